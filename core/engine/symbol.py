"""Graphs: tracing a forward pass, MXNet's ``-symbol.json`` schema, and numpy execution.

A forward pass runs under :func:`tracing` with :class:`Symbol` values: each carries a real
numpy value (so shapes and deferred initialisation work exactly as in an eager pass) and the
graph node that produced it. Parameters read during the trace become variable nodes named by
their unique name. The result is a :class:`Graph`, which reads and writes MXNet's nnvm JSON
(``nodes``, ``arg_nodes``, ``node_row_ptr``, ``heads``, ``attrs``) and executes with the same
operator kernels as the layers (:mod:`.ops`).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..dtypes import MX_FLAG_OF_DTYPE
from ..errors import ModelSurgeonError, ShapeError, UnsupportedOpError
from . import ops
from .ops import parallel

#: MXNet's dtype flags, as written in ``__dtype__`` attributes and ``.params`` files.
#: The MXNet version our graphs claim to follow (1.9.1), as MXNet encodes it.
MXNET_VERSION = 10901
MAX_GRAPH_NODES = 1_000_000


@dataclass
class Node:
    """One graph node; ``op == 'null'`` marks a variable (an input or a Parameter)."""

    op: str
    name: str
    attrs: dict[str, str] = field(default_factory=dict)
    inputs: list[tuple[int, int, int]] = field(default_factory=list)

    @property
    def is_variable(self) -> bool:
        return self.op == "null"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"op": self.op, "name": self.name}
        if self.attrs:
            out["attrs"] = dict(self.attrs)
        out["inputs"] = [list(entry) for entry in self.inputs]
        return out


class Symbol:
    """A traced value: the numpy array and the (node index, output index) that produced it."""

    __slots__ = ("index", "node", "trace", "value")
    __array_ufunc__ = None  # numpy functions on a Symbol fail loudly instead of leaving the graph

    def __init__(self, trace: Trace, node: int, value: np.ndarray, index: int = 0):
        self.trace, self.node, self.index, self.value = trace, node, index, value

    def record_op(self, spec: ops.OpSpec, inputs: list[Any], parsed: dict[str, Any], given: dict[str, Any],
                  hint: str | None) -> Symbol:
        """Record a call of ``spec`` on ``inputs`` (this symbol among them) in the active trace."""
        return record(spec, inputs, parsed, given, hint)

    shape = property(lambda self: self.value.shape)
    dtype = property(lambda self: self.value.dtype)
    ndim = property(lambda self: self.value.ndim)

    def __add__(self, other: Any) -> Any:
        return ops.invoke("elemwise_add", [self, other])

    __radd__ = __add__

    def __mul__(self, other: Any) -> Any:
        return ops.invoke("elemwise_mul", [self, other])

    __rmul__ = __mul__

    def __repr__(self) -> str:
        return f"Symbol({self.trace.nodes[self.node].name}, shape={self.shape})"


class Trace:
    """The graph being recorded while a forward pass runs."""

    def __init__(self, placeholders: bool = False, shapes_only: bool = False) -> None:
        #: trace Parameters that have a known shape but no data with zero-cost stand-ins
        #: (``np.broadcast_to``), so a graph can be traced without loading any weights
        self.placeholders = placeholders
        #: compute no operator: each result is a zero-cost stand-in of its shape (engine/shapes.py)
        self.shapes_only = shapes_only
        self.nodes: list[Node] = []
        self.block_names: list[str] = []
        self.aux: set[int] = set()
        self._variables: dict[int, Symbol] = {}
        self._params: dict[int, Any] = {}
        self._taken: set[str] = set()

    def _unique(self, base: str) -> str:
        name, n = base, 1
        while name in self._taken:
            name, n = f"{base}{n}", n + 1
        self._taken.add(name)
        return name

    def _add(self, node: Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def input(self, name: str, value: np.ndarray) -> Symbol:
        index = self._add(Node("null", self._unique(name)))
        return Symbol(self, index, value)

    def variable(self, param: Any) -> Symbol:
        """The variable node of a Parameter (one per Parameter object, shared or not)."""
        known = self._variables.get(id(param))
        if known is not None:
            return known
        if self.placeholders and param._data is None and _known(param.shape):
            value = np.broadcast_to(np.zeros((), param.dtype), param.shape)
        else:
            value = param._require_data()
        attrs = {"__shape__": str(tuple(value.shape)),
                 "__dtype__": str(MX_FLAG_OF_DTYPE.get(value.dtype, 0))}
        if param.lr_mult != 1.0:
            attrs["__lr_mult__"] = str(param.lr_mult)
        if param.wd_mult != 1.0:
            attrs["__wd_mult__"] = str(param.wd_mult)
        index = self._add(Node("null", self._unique(param.name), attrs))
        symbol = Symbol(self, index, value)
        self._variables[id(param)] = symbol
        self._params[index] = param
        return symbol

    def apply(self, spec: ops.OpSpec, inputs: list[Any], parsed: dict[str, Any],
              given: dict[str, Any], hint: str | None) -> Symbol:
        entries = []
        for position, value in enumerate(inputs):
            if value is None:
                continue
            if not isinstance(value, Symbol) or value.trace is not self:
                raise ModelSurgeonError(
                    f"operator {spec.name} received a plain array while tracing; values used in "
                    "forward() must come from its input or from Parameters (use Constant for fixed arrays)")
            version = 1 if position in spec.aux_inputs else 0
            if version:
                self.aux.add(value.node)
            entries.append((value.node, value.index, version))
        values = [x.value if isinstance(x, Symbol) else x for x in inputs]
        if self.shapes_only:
            from .shapes import shape_only
            result = shape_only(spec, parsed, values)
        else:
            with np.errstate(all="ignore"):  # MXNet's numerics: nan and inf, never a numpy warning
                result = spec.kernel(*values, **parsed)
        base = hint or (f"{self.block_names[-1]}_fwd" if self.block_names else spec.name.lower())
        index = self._add(Node(spec.name, self._unique(base), spec.format(parsed, list(given)), entries))
        if isinstance(result, list):  # a multi-output operator (SliceChannel, topk 'both'...)
            return [Symbol(self, index, value, i) for i, value in enumerate(result)]
        return Symbol(self, index, result)

    def graph(self, outputs: Sequence[Symbol]) -> tuple[Graph, dict[str, Any]]:
        """The recorded graph reduced to what the outputs need, and its Parameters by var name."""
        heads = []
        for out in outputs:
            if not isinstance(out, Symbol) or out.trace is not self:
                raise ModelSurgeonError("forward() must return values computed from its input")
            heads.append((out.node, out.index, 0))
        keep = sorted(_reachable(self.nodes, [h[0] for h in heads]))
        renumber = {old: new for new, old in enumerate(keep)}
        nodes = []
        for old in keep:
            node = self.nodes[old]
            nodes.append(Node(node.op, node.name, dict(node.attrs),
                              [(renumber[i], j, v) for i, j, v in node.inputs]))
        graph = Graph(nodes, [(renumber[i], j, v) for i, j, v in heads])
        params = {self.nodes[i].name: p for i, p in self._params.items() if i in renumber}
        return graph, params


_active: ContextVar[Trace | None] = ContextVar("modelsurgeon_trace", default=None)


def active_trace() -> Trace | None:
    """The trace being recorded in this context, if any."""
    return _active.get()


def _known(shape: tuple[int, ...] | None) -> bool:
    return shape is not None and all(dim >= 0 for dim in shape)


@contextlib.contextmanager
def tracing(placeholders: bool = False, shapes_only: bool = False) -> Iterator[Trace]:
    """Record every operator run in the ``with`` body into a new :class:`Trace` (with ``shapes_only``,
    without computing any of them: results are zero-cost stand-ins of the right shape)."""
    trace = Trace(placeholders, shapes_only)
    token = _active.set(trace)
    try:
        yield trace
    finally:
        _active.reset(token)


def record(spec: ops.OpSpec, inputs: list[Any], parsed: dict[str, Any], given: dict[str, Any],
           hint: str | None) -> Symbol:
    symbols = [x for x in inputs if isinstance(x, Symbol)]
    trace = active_trace()
    if trace is None or symbols[0].trace is not trace:
        raise ModelSurgeonError("a traced Symbol was used outside of its trace")
    return trace.apply(spec, inputs, parsed, given, hint)


def _reachable(nodes: Sequence[Node], roots: Sequence[int]) -> set[int]:
    seen: set[int] = set()
    stack = list(roots)
    while stack:
        index = stack.pop()
        if index in seen:
            continue
        seen.add(index)
        stack.extend(entry[0] for entry in nodes[index].inputs)
    return seen


class Graph:
    """A computation graph in MXNet's nnvm schema; nodes are in topological order."""

    def __init__(self, nodes: list[Node], heads: list[tuple[int, int, int]],
                 attrs: dict[str, Any] | None = None):
        self.nodes = nodes
        self.heads = heads
        self.attrs = attrs if attrs is not None else {"mxnet_version": ["int", MXNET_VERSION]}

    # -- structure ------------------------------------------------------------------------
    def variables(self) -> list[str]:
        return [node.name for node in self.nodes if node.is_variable]

    def aux_variables(self) -> list[str]:
        """Variables consumed as auxiliary states (BatchNorm's moving mean and variance)."""
        aux: set[int] = set()
        for node in self.nodes:
            if node.is_variable:
                continue
            spec = ops.get(node.op, node.name)
            for position, (source, _, _) in enumerate(node.inputs):
                if position in spec.aux_inputs and self.nodes[source].is_variable:
                    aux.add(source)
        return [self.nodes[i].name for i in sorted(aux)]

    def label_variables(self) -> list[str]:
        """Variables read only as training labels (``softmax_label`` of SoftmaxOutput in Module
        checkpoints): inference needs no value for them."""
        users: dict[int, list[bool]] = {}
        for node in self.nodes:
            spec = None if node.is_variable else ops.supported_spec(node.op)
            for position, (source, _, _) in enumerate(node.inputs):
                users.setdefault(source, []).append(spec is not None and position in spec.label_inputs)
        return [self.nodes[i].name for i in sorted(users)
                if self.nodes[i].is_variable and all(users[i])]

    def arguments(self) -> list[str]:
        aux = set(self.aux_variables())
        return [name for name in self.variables() if name not in aux]

    def op_nodes(self) -> list[Node]:
        return [node for node in self.nodes if not node.is_variable]

    def consumers(self) -> dict[int, list[int]]:
        users: dict[int, list[int]] = {}
        for index, node in enumerate(self.nodes):
            for source, _, _ in node.inputs:
                users.setdefault(source, []).append(index)
        return users

    def rename_variables(self, mapping: dict[str, str]) -> Graph:
        """A copy with variable nodes renamed (names not in ``mapping`` are kept)."""
        nodes = [Node(n.op, mapping.get(n.name, n.name) if n.is_variable else n.name, dict(n.attrs),
                      list(n.inputs)) for n in self.nodes]
        return Graph(nodes, list(self.heads), json.loads(json.dumps(self.attrs)))

    # -- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        row_ptr = [0]
        for _ in self.nodes:
            row_ptr.append(row_ptr[-1] + 1)
        return {
            "nodes": [node.to_json() for node in self.nodes],
            "arg_nodes": [i for i, node in enumerate(self.nodes) if node.is_variable],
            "node_row_ptr": row_ptr,
            "heads": [list(head) for head in self.heads],
            "attrs": self.attrs,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_json(cls, source: str | bytes | dict[str, Any], check_attrs: bool = True) -> Graph:
        """Read and validate MXNet graph JSON (1.x and 2.x spellings); ModelSurgeonError if bad.

        Attributes of known operators are checked against their declared types and ranges
        (:meth:`validate_attrs`) unless ``check_attrs`` is False."""
        try:
            data = json.loads(source) if isinstance(source, (str, bytes)) else source
        except (ValueError, RecursionError) as exc:
            raise ModelSurgeonError(f"graph is not valid JSON: {exc}") from None
        if not isinstance(data, dict) or not isinstance(data.get("nodes"), list):
            raise ModelSurgeonError("graph JSON has no 'nodes' list")
        raw_nodes = data["nodes"]
        if len(raw_nodes) > MAX_GRAPH_NODES:
            raise ModelSurgeonError(f"graph has {len(raw_nodes)} nodes, more than {MAX_GRAPH_NODES}")
        nodes = []
        for index, raw in enumerate(raw_nodes):
            if not isinstance(raw, dict) or not isinstance(raw.get("op"), str) \
                    or not isinstance(raw.get("name"), str):
                raise ModelSurgeonError(f"graph node {index} needs string 'op' and 'name'")
            attrs = raw.get("attrs", raw.get("attr", raw.get("param", {}))) or {}
            if not isinstance(attrs, dict) or not all(isinstance(v, str) for v in attrs.values()):
                raise ModelSurgeonError(f"graph node {index} ('{raw['name']}') has non-string attributes")
            inputs = [_entry(e, index, f"input of node {index} ('{raw['name']}')")
                      for e in _as_list(raw.get("inputs", []), index)]
            nodes.append(Node(raw["op"], raw["name"], dict(attrs), inputs))
        heads = [_entry(e, len(nodes), "head") for e in _as_list(data.get("heads", []), -1)]
        if not heads:
            raise ModelSurgeonError("graph has no heads (outputs)")
        attrs = data.get("attrs", {})
        graph = cls(nodes, heads, attrs if isinstance(attrs, dict) else {})
        if check_attrs:
            graph.validate_attrs()
        return graph

    def validate_attrs(self) -> None:
        """Check the attributes of every node whose operator we know against their declared types
        and ranges (InvalidAttributeError naming the node and attribute); unknown operators and
        attributes are left to :meth:`check_ops`, so surgeries still work on such graphs."""
        for node in self.op_nodes():
            spec = ops.supported_spec(node.op)
            if spec is None:
                continue
            try:
                spec.parse(node.attrs, node.name)
            except UnsupportedOpError:
                continue

    # -- execution ----------------------------------------------------------------------
    def check_ops(self) -> None:
        """Raise UnsupportedOpError naming the first operator we cannot execute."""
        for node in self.op_nodes():
            spec = ops.get(node.op, node.name)
            parsed = spec.parse(node.attrs, node.name)
            expected = len(spec.inputs(parsed))
            if spec.variadic:
                if parsed.get("num_args") not in (None, len(node.inputs)) or not node.inputs:
                    raise ModelSurgeonError(f"node '{node.name}' ({node.op}) has {len(node.inputs)} inputs but "
                                            f"num_args={parsed.get('num_args')}")
            elif len(node.inputs) != expected and len(node.inputs) != expected - len(spec.label_inputs):
                raise ModelSurgeonError(f"node '{node.name}' ({node.op}) has {len(node.inputs)} inputs; it takes "
                                        f"{expected} ({', '.join(spec.inputs(parsed))})")
            for source, out_index, _ in node.inputs:
                if out_index >= self._num_outputs(source):
                    raise ModelSurgeonError(f"node '{node.name}' reads output {out_index} of "
                                            f"'{self.nodes[source].name}', which has "
                                            f"{self._num_outputs(source)} output(s)")

    def _num_outputs(self, index: int) -> int:
        node = self.nodes[index]
        if node.is_variable:
            return 1
        spec = ops.get(node.op, node.name)
        return spec.num_outputs(spec.parse(node.attrs, node.name))

    def execute(self, feeds: dict[str, Any]) -> list[Any]:
        """Run the graph; ``feeds`` maps every variable name to an array (or traced Symbol).

        On float32 arrays, a Convolution whose only consumer is an inference BatchNorm (and that
        one's only consumer a ReLU) runs as one folded convolution, exactly as eager Sequential
        passes do (core/engine/nn/fusion.py), so a model and its exported graph give the same bits.
        BLAS runs on one thread for the whole pass (the kernels run their own tasks on the cores).
        """
        plain = all(isinstance(v, np.ndarray) and v.dtype == np.float32 for v in feeds.values())
        plan = self._schedule(plain, frozenset(feeds))
        values: dict[int, Any] = {}
        multi: set[int] = set()  # nodes whose kernel returned a list of outputs

        def output(source: int, out: int) -> Any:  # the out-th output of a node
            return values[source][out] if source in multi else values[source]

        with parallel.forward_pass(), np.errstate(all="ignore"):  # MXNet's numerics: nan and inf, no warnings
            for index, node in enumerate(self.nodes):
                if node.is_variable:
                    if node.name in plan.labels:
                        values[index] = None  # a training label: inference does not read it
                    elif node.name not in feeds:
                        raise ModelSurgeonError(f"no value for graph variable '{node.name}'")
                    else:
                        values[index] = feeds[node.name]
                else:
                    args = [output(source, out) for source, out, _ in node.inputs]
                    if index in plan.convs:  # runs folded into the BatchNorm that consumes it
                        values[index] = args
                    elif index in plan.fused:
                        conv_index, relu = plan.fused[index]
                        values[index] = self._run_fused(conv_index, args[0], node, args[1:], relu is not None)
                    elif index in plan.relus:
                        values[index] = args[0]  # ran in place with the fused convolution
                    elif index in plan.in_place and _overwritable(args, plan.in_place[index]):
                        target = args[plan.in_place[index]]
                        if len(args) == 1:
                            values[index] = ops.common.relu(target, out=target)
                        else:
                            values[index] = np.add(args[0], args[1], out=target)
                    else:
                        values[index] = ops.invoke(node.op, args, node.attrs, hint=node.name, quiet=True)
                        if isinstance(values[index], list):
                            multi.add(index)
                for source in plan.free[index]:
                    values.pop(source, None)
        return [output(head[0], head[1]) for head in self.heads]

    def _schedule(self, plain: bool, fed: frozenset[str]) -> _Schedule:
        """What :meth:`execute` needs beyond the values, worked out once per graph and kind of feed.

        Keyed by the node list's identity and length and the heads: a graph's nodes and their
        inputs are not rewired after it is built (surgeries change attributes, which every pass
        parses again, or build a new graph)."""
        key = (id(self.nodes), len(self.nodes), tuple(self.heads), plain, fed)
        cache: dict[Any, _Schedule] = self.__dict__.setdefault("_schedules", {})
        if key not in cache:
            last_use: dict[int, int] = {}
            for index, node in enumerate(self.nodes):
                for source, _, _ in node.inputs:
                    last_use[source] = index
            keep = {head[0] for head in self.heads}
            free: list[list[int]] = [[] for _ in self.nodes]
            for source, index in last_use.items():
                if source not in keep:
                    free[index].append(source)
            fused = self._fusions() if plain else {}
            cache.clear()  # one kind of feed at a time is the rule; keep the cache from growing
            cache[key] = _Schedule(fused, {conv for conv, _ in fused.values()},
                                   {relu for _, relu in fused.values() if relu is not None},
                                   self._in_place(fused) if plain else {},
                                   set(self.label_variables()) - fed, free)
        return cache[key]

    def _readers(self) -> dict[int, list[int]]:
        """Node -> the nodes that read any of its outputs, in graph order (once per input they take)."""
        uses: dict[int, list[int]] = {}
        for index, node in enumerate(self.nodes):
            for source, _, _ in node.inputs:
                uses.setdefault(source, []).append(index)
        return uses

    def _fusions(self) -> dict[int, tuple[int, int | None]]:
        """BatchNorm node -> (its Convolution, the ReLU after it or None), for every foldable pair."""
        uses = self._readers()
        heads = {head[0] for head in self.heads}
        found: dict[int, tuple[int, int | None]] = {}
        for index, node in enumerate(self.nodes):
            if _spec_name(node) != "BatchNorm" or len(node.inputs) != 5:
                continue
            conv_index, conv = node.inputs[0][0], self.nodes[node.inputs[0][0]]
            if _spec_name(conv) != "Convolution" or conv_index in heads or uses.get(conv_index) != [index]:
                continue
            norm_attrs = ops.get(node.op).parse(node.attrs)
            if norm_attrs["axis"] != 1 or norm_attrs["output_mean_var"]:
                continue
            after = uses.get(index, [])
            relu = None
            if len(after) == 1 and index not in heads and _is_relu(self.nodes[after[0]]):
                relu = after[0]
            found[index] = (conv_index, relu)
        return found

    def _in_place(self, fused: dict[int, tuple[int, int | None]]) -> dict[int, int]:
        """ReLUs and sums of two arrays that may write into one of their inputs: node -> which input.

        That input must be the fresh output of an operator that makes a new array (a sum, a
        BatchNorm, a layer) that no other node reads: a ReLU after a sum or a BatchNorm, a residual
        sum after the convolution of its branch. (At run time the sum also checks that the input has
        the output's shape and dtype: a broadcast or a promotion makes a new array as before.)"""
        uses = self._readers()
        heads = {head[0] for head in self.heads}
        absorbed = {relu for _, relu in fused.values()}

        def own(index: int, entry: tuple[int, int, int]) -> bool:  # only this node reads that fresh value
            source = entry[0]
            return _spec_name(self.nodes[source]) in _FRESH_OUTPUT and uses.get(source) == [index] \
                and source not in heads and entry[1] == 0

        found: dict[int, int] = {}
        for index, node in enumerate(self.nodes):
            if node.is_variable or index in absorbed:
                continue
            if _is_relu(node) and own(index, node.inputs[0]):
                found[index] = 0
            elif _spec_name(node) in _SUMS and len(node.inputs) == 2 and node.inputs[0][0] != node.inputs[1][0]:
                writable = [position for position, entry in enumerate(node.inputs) if own(index, entry)]
                if writable:
                    found[index] = writable[0]
        return found

    def _run_fused(self, conv_index: int, conv_args: list[Any], norm: Node, norm_args: list[Any],
                   relu: bool) -> Any:
        conv = self.nodes[conv_index]
        attrs = ops.get(conv.op).parse(conv.attrs)
        no_bias = attrs.pop("no_bias")
        data, weight, bias = conv_args[0], conv_args[1], None if no_bias else conv_args[2]
        norm_attrs = ops.get(norm.op).parse(norm.attrs)
        try:  # inside execute()'s silenced numerics
            return ops.convolution_batch_norm(data, weight, bias, *norm_args, conv=attrs,
                                              eps=norm_attrs["eps"], fix_gamma=norm_attrs["fix_gamma"], relu=relu)
        except (ValueError, TypeError, IndexError) as exc:
            raise ShapeError(f"operators {conv.name} and {norm.name} cannot run on input of shape "
                             f"{getattr(data, 'shape', None)}: {exc}") from None


@dataclass
class _Schedule:
    """A graph's execution plan: folded pairs (BatchNorm -> (Convolution, ReLU or None)), the
    convolutions and ReLUs they absorb, the ReLUs and sums that write into one of their inputs,
    training labels left unfed, and the values each node's step frees (their last reader)."""

    fused: dict[int, tuple[int, int | None]]
    convs: set[int]
    relus: set[int]
    in_place: dict[int, int]
    labels: set[str]
    free: list[list[int]]


#: Operators whose (single) output is always an array of their own, never a view of an input.
_FRESH_OUTPUT = frozenset({"elemwise_add", "broadcast_add", "_npi_add", "add_n", "BatchNorm", "Convolution",
                           "FullyConnected"})


#: Sums of two arrays that :meth:`Graph._in_place` may run into one of their inputs.
_SUMS = frozenset({"elemwise_add", "broadcast_add", "_npi_add"})


def _overwritable(args: list[Any], position: int) -> bool:
    """Whether ``args[position]`` (a fresh value only this node reads) can take the node's result: a
    writable floating array, of the sum's shape and dtype when the node is a sum."""
    target = args[position]
    if not (isinstance(target, np.ndarray) and target.dtype.kind == "f" and target.flags.writeable):
        return False
    if len(args) == 1:
        return True
    other = args[1 - position]
    if not (isinstance(other, np.ndarray) and other.dtype == target.dtype and other.ndim <= target.ndim):
        return False
    try:
        return np.broadcast_shapes(other.shape, target.shape) == target.shape
    except ValueError:  # the operator reports it
        return False


def _spec_name(node: Node) -> str | None:
    """The registered operator a node runs (its canonical name), or None for variables and unknown ops."""
    spec = None if node.is_variable else ops.supported_spec(node.op)
    return spec.name if spec is not None else None


def _is_relu(node: Node) -> bool:
    name = _spec_name(node)
    if len(node.inputs) != 1:
        return False
    return name == "relu" or (name == "Activation" and ops.get(node.op).parse(node.attrs)["act_type"] == "relu")


def _as_list(value: Any, index: int) -> list[Any]:
    if not isinstance(value, list):
        raise ModelSurgeonError(f"graph node {index}: expected a list")
    return value


def _entry(entry: Any, limit: int, what: str) -> tuple[int, int, int]:
    if not isinstance(entry, list) or not 2 <= len(entry) <= 3 \
            or not all(isinstance(v, int) and not isinstance(v, bool) for v in entry):
        raise ModelSurgeonError(f"graph {what}: expected [node, output, version], got {entry!r}")
    node, out = entry[0], entry[1]
    if not 0 <= node < limit or out < 0:
        raise ModelSurgeonError(f"graph {what} refers to node {node}, which does not come before it")
    return node, out, entry[2] if len(entry) == 3 else 0
