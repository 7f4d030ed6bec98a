"""SymbolBlock: a runnable block rebuilt from a graph and name-keyed parameters.

``SymbolBlock.imports('model-symbol.json', ['data'], 'model-0000.params')`` reads any
parameter format we support (our name-keyed HDF5, MXNet's ``.params`` or ``.npz``); the
block's ``collect_params()`` is keyed by the graph's variable names (the unique names).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..dtypes import MX_DTYPE_FLAGS
from ..errors import ModelSurgeonError
from . import persistence
from .block import HybridBlock
from .parameter import UNKNOWN, Parameter
from .symbol import Graph


def _variable_parameter(name: str, attrs: dict[str, str], aux: bool) -> Parameter:
    shape = None
    if "__shape__" in attrs:
        try:
            dims = ast.literal_eval(attrs["__shape__"])
            shape = tuple(int(d) if int(d) > 0 else UNKNOWN for d in dims)
        except (ValueError, SyntaxError, TypeError, OverflowError, MemoryError, RecursionError):
            raise ModelSurgeonError(f"graph variable '{name}' has a malformed __shape__ "
                                    f"{attrs['__shape__'][:80]!r}") from None
    dtype = np.dtype(np.float32)
    if attrs.get("__dtype__", "").lstrip("-").isdigit():
        dtype = MX_DTYPE_FLAGS.get(int(attrs["__dtype__"]), np.dtype(np.float32))
    from .naming import short_name
    param = Parameter(short_name(name), shape=shape, dtype=dtype, allow_deferred_init=True,
                      grad_req="null" if aux else "write")
    param._name = name  # a graph variable keeps its name, as MXNet's imports does
    return param


class SymbolBlock(HybridBlock):
    """Runs a :class:`~modelsurgeon.core.engine.symbol.Graph` with numpy.

    Args:
        outputs: the graph (a Graph, or graph JSON as a string or dict).
        inputs: names of the graph variables that are inputs (``['data']``).
        params: optional Parameters by variable name, to share with another block.
    """

    _graph: Graph
    _input_names: list[str]

    def __init__(self, outputs: Graph | str | dict[str, Any], inputs: str | Sequence[str],
                 params: dict[str, Parameter] | None = None) -> None:
        super().__init__()
        graph = outputs if isinstance(outputs, Graph) else Graph.from_json(outputs)
        graph.check_ops()
        names = [inputs] if isinstance(inputs, str) else list(inputs)
        variables = graph.variables()
        missing = [n for n in names if n not in variables]
        if missing:
            raise ModelSurgeonError(f"input(s) {missing} are not variables of the graph "
                                    f"(variables: {variables[:5]}{'...' if len(variables) > 5 else ''})")
        # training labels (SoftmaxOutput's softmax_label in Module checkpoints) are neither inputs
        # nor parameters at inference: the graph runs without them
        labels = set(graph.label_variables())
        names = [n for n in names if n not in labels] or names
        object.__setattr__(self, "_graph", graph)
        object.__setattr__(self, "_input_names", names)
        aux = set(graph.aux_variables())
        params = params or {}
        unused = [k for k in params if k not in variables]
        if unused:
            raise ModelSurgeonError(f"{unused} params are unused by the model.")
        attrs = {node.name: node.attrs for node in graph.nodes if node.is_variable}
        for name in variables:
            if name in names or name in labels:
                continue
            self._reg_params[name] = params.get(name) or _variable_parameter(name, attrs[name], name in aux)

    @property
    def graph(self) -> Graph:
        return self._graph

    @property
    def input_names(self) -> list[str]:
        return list(self._input_names)

    def forward(self, *xs: Any) -> Any:
        if len(xs) != len(self._input_names):
            raise ModelSurgeonError(f"this graph takes {len(self._input_names)} input(s) "
                                    f"({', '.join(self._input_names)}), got {len(xs)}")
        feeds = dict(zip(self._input_names, xs))
        for name, param in self._reg_params.items():
            feeds[name] = param.data()
        outputs = self._graph.execute(feeds)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)

    def infer_shape(self, *xs: Any) -> None:
        unknown = [k for k, p in self._reg_params.items() if p.shape is None or UNKNOWN in p.shape]
        raise ModelSurgeonError(f"graph parameters {unknown[:5]} have unknown shapes; load parameters "
                                "before running the graph")

    @staticmethod
    def imports(symbol_file: str, input_names: str | Sequence[str], param_file: str | None = None,
                allow_missing: bool = False, ignore_extra: bool = False, **_: Any) -> SymbolBlock:
        """Rebuild a block from ``-symbol.json`` and a parameter file of any supported format."""
        block = SymbolBlock(persistence.binding().read_graph_file(symbol_file), input_names)
        if param_file is not None:
            block.load_parameters(param_file, allow_missing=allow_missing, ignore_extra=ignore_extra,
                                  cast_dtype=True, dtype_source="saved")
        return block

    def __repr__(self) -> str:
        ops = len(self._graph.op_nodes())
        return f"SymbolBlock({ops} operators, inputs={self._input_names})"
