"""Block and HybridBlock: the containers of Parameters and child Blocks.

Assigning a Block or Parameter to an attribute registers it, in insertion order; replacing a
child keeps its position. :meth:`Block.named_blocks` is the one recursion behind every
structural name (``features.0.weight``): ``collect_params``, checkpoints, export and the CLI
all build on it.

>>> from modelsurgeon.core import nn
>>> net = nn.HybridSequential()
>>> net.add(nn.Dense(4, in_units=3), nn.Dense(2, in_units=4))
>>> list(net.collect_params())
['0.weight', '0.bias', '1.weight', '1.bias']
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import ModelSurgeonError
from . import naming, persistence, symbol
from .ops import parallel
from .parameter import Parameter, shape_is_known


class Block:
    """Base class of all layers and models; subclasses define :meth:`forward`."""

    #: set by leaf layers whose children are fully determined by their hyperparameters
    _arch_leaf = False
    #: set by containers whose forward applies their children one after another, in order
    _arch_chain = False
    # Set with object.__setattr__ in __init__ (this class's __setattr__ registers children and
    # Parameters, and needs these to exist first).
    _children: dict[str, Block]
    _reg_params: dict[str, Parameter]
    _name: str
    _input_specs: list[tuple[tuple[int, ...], Any]] | None

    def __init__(self) -> None:
        object.__setattr__(self, "_children", {})
        object.__setattr__(self, "_reg_params", {})
        object.__setattr__(self, "_name", naming.next_block_name(self._alias()))
        object.__setattr__(self, "_input_specs", None)

    @classmethod
    def _alias(cls) -> str:
        return cls.__name__.lower()

    @property
    def name(self) -> str:
        """The block's counter-based name (``dense0``); structural keys never use it."""
        return self._name

    @property
    def params(self) -> dict[str, Parameter]:
        """This block's own Parameters (not its children's)."""
        return dict(self._reg_params)

    # -- registration -------------------------------------------------------------------------
    def __setattr__(self, name: str, value: Any) -> None:
        existing: Block | Parameter | None = self._children.get(name)
        if existing is None:
            existing = self._reg_params.get(name)
        if existing is not None and not isinstance(value, type(existing)):
            raise TypeError(f"Changing attribute type for {name} from {type(existing)} to "
                            f"{type(value)} is not allowed.")
        if isinstance(value, Block):
            self.register_child(value, name)
        elif isinstance(value, Parameter):
            self._reg_params[name] = value
        object.__setattr__(self, name, value)

    def register_child(self, block: Block, name: str | None = None) -> None:
        """Register ``block`` under ``name`` (default: the next index); a known name keeps its place."""
        if name is None:
            name = str(len(self._children))
        _check_child_name(name)
        self._children[name] = block

    def _replace_child(self, name: str, block: Block) -> None:
        """Put ``block`` in place of child ``name`` (any type), keeping the position."""
        self._children[name] = block
        if name in self.__dict__:
            object.__setattr__(self, name, block)

    def _remove_child(self, name: str) -> None:
        del self._children[name]
        if name in self.__dict__:
            object.__setattr__(self, name, None)

    # -- traversal ----------------------------------------------------------------------------
    def named_blocks(self, prefix: str = "") -> Iterator[tuple[str, Block]]:
        """Yield (path, block) for this block and every descendant, depth first, in order."""
        yield prefix, self
        for name, child in self._children.items():
            yield from child.named_blocks(f"{prefix}.{name}" if prefix else name)

    def named_parameters(self) -> Iterator[tuple[str, Parameter]]:
        """Yield (structural key, Parameter): a block's own Parameters, then its children's."""
        for path, block in self.named_blocks():
            for local, param in block._reg_params.items():
                yield (f"{path}.{local}" if path else local), param

    def collect_params(self, select: str | None = None) -> dict[str, Parameter]:
        """Parameters keyed by structural name; ``select`` is a regex matched against whole keys."""
        pattern = re.compile(select) if select is not None else None
        return {key: param for key, param in self.named_parameters()
                if pattern is None or pattern.fullmatch(key)}

    def unique_parameters(self) -> list[Parameter]:
        """Every distinct Parameter once (shared ones are not repeated)."""
        seen: dict[int, Parameter] = {}
        for _, param in self.named_parameters():
            seen.setdefault(id(param), param)
        return list(seen.values())

    def get_block(self, path: str) -> Block:
        """The descendant at dotted ``path`` (``''`` is this block); errors name the failing part."""
        block = self
        walked: list[str] = []
        for part in path.split(".") if path else []:
            if part not in block._children:
                where = ".".join(walked) or "the model"
                choices = ", ".join(block._children) or "none"
                raise ModelSurgeonError(f"no block '{part}' in {where} (children: {choices})")
            block = block._children[part]
            walked.append(part)
        return block

    def set_block(self, path: str, new: Block) -> None:
        """Replace the descendant at ``path`` by ``new`` in the same position."""
        if not path:
            raise ModelSurgeonError("cannot replace the root block")
        parent_path, _, name = path.rpartition(".")
        parent = self.get_block(parent_path)
        if name not in parent._children:
            parent.get_block(name)  # raises with the list of choices
        parent._replace_child(name, new)

    # -- initialisation ----------------------------------------------------------------------
    def initialize(self, init: Any = None, force_reinit: bool = False, **_: Any) -> Block:
        """Initialise every Parameter; ``init`` is the default for those without their own."""
        for param in self.unique_parameters():
            param.initialize(None, default_init=init, force_reinit=force_reinit)
        return self

    def share_parameters(self, shared: dict[str, Parameter]) -> Block:
        """Use the Parameters in ``shared`` (keyed by structural name) in place of this block's own."""
        if not isinstance(shared, dict):
            raise ModelSurgeonError(f"share_parameters takes a dict of Parameters, not {type(shared).__name__}")
        for path, block in self.named_blocks():
            for local in list(block._reg_params):
                key = f"{path}.{local}" if path else local
                if key in shared:
                    setattr(block, local, shared[key])
        return self

    def cast(self, dtype: Any) -> Block:
        for param in self.unique_parameters():
            param.cast(dtype)
        return self

    def hybridize(self, active: bool = True, **_: Any) -> Block:
        """Accepted for Gluon compatibility; the numpy engine always runs the same way."""
        for child in self._children.values():
            child.hybridize(active)
        return self

    # -- forward ------------------------------------------------------------------------------
    def __call__(self, *args: Any) -> Any:
        trace = symbol.active_trace()
        if trace is not None:
            trace.block_names.append(self._name)
        # a pass (not a trace) holds one single-BLAS region, taken by the outermost block
        region = parallel.forward_pass() if trace is None else contextlib.nullcontext()
        try:
            with region:
                self._prepare(*args)
                return self.forward(*args)
        finally:
            if trace is not None:
                trace.block_names.pop()

    def _prepare(self, *args: Any) -> None:
        own = list(self._reg_params.values())
        if any(not shape_is_known(p.shape) for p in own):
            self.infer_shape(*args)
        for param in own:
            param._finish_deferred_init()

    def forward(self, *args: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def infer_shape(self, *args: Any) -> None:
        unknown = [k for k, p in self._reg_params.items() if not shape_is_known(p.shape)]
        raise ModelSurgeonError(
            f"{type(self).__name__} '{self._name}' has parameters with unknown shape ({', '.join(unknown)}). "
            "Specify the shape in __init__ or implement infer_shape.")

    # -- checkpoints (implemented by the binding layer, which owns all file access) -----------
    def save_parameters(self, filename: str, deduplicate: bool = False) -> None:
        """Write a structural checkpoint (keys like ``features.0.weight``) to an HDF5 file."""
        persistence.binding().save_parameters(self, filename, deduplicate=deduplicate)

    def load_parameters(self, filename: str, allow_missing: bool = False, ignore_extra: bool = False,
                        cast_dtype: bool = False, dtype_source: str = "current") -> None:
        """Load a checkpoint by structural name; every mismatch is reported at once."""
        persistence.binding().load_parameters(self, filename, allow_missing=allow_missing, ignore_extra=ignore_extra,
                        cast_dtype=cast_dtype, dtype_source=dtype_source)

    def load_dict(self, arrays: dict[str, Any], allow_missing: bool = False, ignore_extra: bool = False,
                  cast_dtype: bool = False, dtype_source: str = "current",
                  source: str = "param_dict") -> None:
        """Load arrays keyed by structural name (``arg:``/``aux:`` prefixes are accepted)."""
        persistence.binding().load_arrays(self, arrays, allow_missing=allow_missing, ignore_extra=ignore_extra,
                    cast_dtype=cast_dtype, dtype_source=dtype_source, source=source)

    # -- repr ---------------------------------------------------------------------------------
    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}("]
        for name, child in self._children.items():
            body = repr(child).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        return "\n".join(lines) + "\n)" if len(lines) > 1 else f"{type(self).__name__}()"


class HybridBlock(Block):
    """A Block whose forward pass can be traced into a graph and exported."""

    def register_child(self, block: Block, name: str | None = None) -> None:
        if not isinstance(block, HybridBlock):
            raise ModelSurgeonError(
                f"Children of HybridBlock must also be HybridBlock, but {block!r} has type "
                f"{type(block)}. If you are using Sequential, please try HybridSequential instead.")
        super().register_child(block, name)

    def __call__(self, *args: Any) -> Any:
        if symbol.active_trace() is None and args and all(isinstance(a, np.ndarray) for a in args):
            object.__setattr__(self, "_input_specs", [(a.shape, a.dtype) for a in args])
        return super().__call__(*args)

    def trace(self, *inputs: Any, placeholders: bool = False) -> tuple[symbol.Graph, dict[str, Parameter]]:
        """Trace one forward pass into a Graph; inputs are arrays, or taken from the last call.

        With ``placeholders=True``, Parameters with known shapes but no data trace as zeros
        that take no memory, so a model's graph can be made without its weights. No operator is
        computed (the trace is shapes-only, engine/shapes.py): the graph is all a trace keeps, so
        a declared input of [2000, 3, 224, 224] costs nothing here.
        """
        from .shapes import placeholder
        if not inputs:
            if self._input_specs is None:
                raise ModelSurgeonError("Please first run forward with this block at least once "
                                        "before calling export.")
            inputs = tuple(placeholder(shape, dtype) for shape, dtype in self._input_specs)
        else:
            object.__setattr__(self, "_input_specs", [(np.shape(x), np.asarray(x).dtype) for x in inputs])
        names = ["data"] if len(inputs) == 1 else [f"data{i}" for i in range(len(inputs))]
        with symbol.tracing(placeholders, shapes_only=True) as tracer:
            out = self(*(tracer.input(n, np.asarray(x)) for n, x in zip(names, inputs)))
            outputs = list(out) if isinstance(out, (list, tuple)) else [out]
            return tracer.graph(outputs)

    def export(self, path: str, epoch: int = 0, format: str = "h5") -> tuple[str, str | None]:
        """Write ``{path}-symbol.json`` and name-keyed parameters ``{path}-{epoch:04d}.h5``.

        ``format='mxnet'`` writes MXNet's binary ``.params`` instead. Returns both file names.
        """
        return persistence.binding().export_block(self, path, epoch=epoch, format=format)


def _check_child_name(name: str) -> None:
    if not isinstance(name, str) or not name:
        raise ModelSurgeonError(f"a child block needs a non-empty string name, not {name!r}")
    if "." in name:
        raise ModelSurgeonError(f"child block name {name!r} cannot contain '.'")
