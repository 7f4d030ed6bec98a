"""Surgery operations: each validates everything first and returns a plan; nothing is written here.

A plan lists the changes (for ``--dry-run``) and knows the new tensors, architecture and graph;
:mod:`.rewrite` streams a plan into an output file. Inputs are never modified.
"""

from __future__ import annotations

import copy
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .checkpoint import match, mismatch_error, structural_view
from .errors import ModelSurgeonError, SurgeryError, brief_list
from .formats.base import NAMED, STRUCTURAL, CheckpointReader, TensorInfo
from .lazy import lazy_module

# The engine, loaded on first use: most surgery on plain tensor files never touches it.
arch = lazy_module(f"{__package__}.engine.architecture")
block_mod = lazy_module(f"{__package__}.engine.block")
init_mod = lazy_module(f"{__package__}.engine.initializer")
symbol = lazy_module(f"{__package__}.engine.symbol")

if TYPE_CHECKING:
    from .engine.block import Block
    from .engine.symbol import Graph

# -- rename -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One rename rule: ``re.sub(pattern, replacement, key)`` (every match, like mmengine)."""

    pattern: re.Pattern[str]
    replacement: str
    text: str


def rule(pattern: str, replacement: str, text: str | None = None) -> Rule:
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise SurgeryError(f"bad regular expression {pattern!r}: {exc}") from None
    return Rule(compiled, replacement, text or f"{pattern}={replacement}")


def parse_rule(text: str) -> Rule:
    """``'REGEX=REPLACEMENT'``; a literal ``=`` in the regex is written ``\\=``."""
    match_ = re.search(r"(?<!\\)=", text)
    if match_ is None:
        raise SurgeryError(f"rename rule {text!r} has no '=' (expected REGEX=REPLACEMENT)")
    pattern = text[:match_.start()].replace("\\=", "=")
    if not pattern:
        raise SurgeryError(f"rename rule {text!r} has an empty pattern")
    return rule(pattern, text[match_.end():], text)


def parse_rule_file(content: str, source: str = "map file") -> list[Rule]:
    """Rules from JSON (``{"regex": "repl"}``, ``[["regex", "repl"], ...]``) or lines ``REGEX=REPL``."""
    stripped = content.strip()
    if stripped.startswith(("{", "[")):
        try:
            data = json.loads(stripped)
        except ValueError as exc:
            raise SurgeryError(f"{source} is not valid JSON: {exc}") from None
        pairs = list(data.items()) if isinstance(data, dict) else data
        rules = []
        for pair in pairs:
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                raise SurgeryError(f"{source}: each rule must be a [regex, replacement] pair of strings")
            rules.append(rule(pair[0], pair[1]))
        return rules
    return [parse_rule(line.strip()) for line in content.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def prefix_rules(strip: list[str] | tuple[str, ...] = (), add: list[str] | tuple[str, ...] = ()) -> list[Rule]:
    """``--strip-prefix P`` removes P where a key starts with it; ``--add-prefix P`` prepends P."""
    rules = [rule("^" + re.escape(p), "", f"strip prefix {p!r}") for p in strip]
    rules += [rule("^", p.replace("\\", "\\\\"), f"add prefix {p!r}") for p in add]
    return rules


@dataclass
class RenamePlan:
    """What a rename does: the new key of every key, and the documents that follow."""

    mapping: dict[str, str]
    architecture: dict[str, Any] | None
    graph: dict[str, Any] | None
    unused_rules: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def changes(self) -> list[tuple[str, str]]:
        return [(old, new) for old, new in self.mapping.items() if old != new]


def plan_rename(reader: CheckpointReader, rules: list[Rule], strict: bool = False,
                drop_architecture: bool = False) -> RenamePlan:
    """Apply ``rules`` in order to every key; refuse collisions, empty segments and (strict) unused rules."""
    if not rules:
        raise SurgeryError("no rename rules given (use --map, --map-file, --strip-prefix or --add-prefix)")
    mapping: dict[str, str] = {}
    hits: Counter[int] = Counter()
    for key in reader.tensors:
        new = key
        for index, r in enumerate(rules):
            try:
                new, count = r.pattern.subn(r.replacement, new)
            except (re.error, IndexError) as exc:
                raise SurgeryError(f"rule {r.text!r} has a bad replacement: {exc}") from None
            if count:
                hits[index] += 1
        mapping[key] = new
    problems = []
    empty = [f"{old} -> {new!r}" for old, new in mapping.items() if new == "" or "" in new.split(".")]
    if empty:
        problems.append(f"{len(empty)} key(s) would have an empty path segment: {brief_list(empty)}")
    sources: dict[str, list[str]] = {}
    for old, new in mapping.items():
        sources.setdefault(new, []).append(old)
    collisions = [f"{' + '.join(olds)} -> {new}" for new, olds in sources.items() if len(olds) > 1]
    if collisions:
        problems.append(f"{len(collisions)} collision(s), several keys would become one: {brief_list(collisions)}")
    if reader.graph is not None and reader.kind == NAMED:
        others = set(symbol.Graph.from_json(reader.graph).variables()) - set(reader.tensors)
        taken = [f"{old} -> {new}" for old, new in mapping.items() if new in others]
        if taken:
            problems.append(f"{len(taken)} key(s) would take the name of a graph input: {brief_list(taken)}")
    unused = [rules[i].text for i in range(len(rules)) if not hits[i]]
    if strict and unused:
        problems.append(f"{len(unused)} rule(s) matched no key (--strict): {brief_list(unused)}")
    if problems:
        raise SurgeryError("; ".join(problems) + "; nothing was written")
    plan = RenamePlan(mapping, reader.architecture, reader.graph, unused)
    if not plan.changes:
        return plan
    if reader.kind == STRUCTURAL and reader.architecture is not None:
        try:
            plan.architecture = rename_architecture(reader.architecture, mapping)
        except SurgeryError as exc:
            if not drop_architecture:
                raise SurgeryError(f"{exc} (use --drop-architecture to write the renamed keys without it)") from None
            plan.architecture = None
            plan.notes.append(f"architecture dropped: {exc}")
    if reader.graph is not None and reader.kind == NAMED:
        plan.graph = symbol.Graph.from_json(reader.graph).rename_variables(mapping).to_dict()
    return plan


def _split(key: str) -> tuple[tuple[str, ...], str]:
    parts = key.split(".")
    return tuple(parts[:-1]), parts[-1]


def _chain_type(cls: type[Block]) -> str:
    return "HybridSequential" if issubclass(cls, block_mod.HybridBlock) else "Sequential"


def rename_architecture(document: dict[str, Any], mapping: dict[str, str]) -> dict[str, Any]:
    """The architecture with block paths renamed as ``mapping`` renames keys.

    Follows renames of child names (``output`` -> ``fc``, ``features.0`` -> ``features.conv1``),
    an added prefix (wraps the model in a container) and a stripped prefix (unwraps a
    single-child container). Anything else raises SurgeryError.
    """
    pairs = []
    for old, new in mapping.items():
        (p, local), (q, new_local) = _split(old), _split(new)
        if local != new_local:
            raise SurgeryError(f"'{old}' -> '{new}' renames the parameter itself ({local} -> {new_local}), "
                               "which the architecture cannot follow")
        pairs.append((old, new, p, q))
    deltas = {len(q) - len(p) for _, _, p, q in pairs}
    if len(deltas) != 1:
        raise SurgeryError("the rules change the depth of some keys but not others, which the "
                           "architecture cannot follow")
    delta = deltas.pop()
    root = copy.deepcopy(document["root"])
    if delta < 0:
        wrappers = {p[:-delta] for _, _, p, _ in pairs}
        if len(wrappers) != 1:
            raise SurgeryError("the stripped prefixes differ between keys")
        for name in wrappers.pop():
            children = root.get("children") or []
            cls = arch.REGISTRY.get(root.get("type", ""))
            if len(children) != 1 or children[0][0] != name or cls is None or not cls._arch_chain:
                raise SurgeryError(f"cannot strip '{name}': it is not the only child of a sequential container")
            root = children[0][1]
        pairs = [(o, n, p[-delta:], q) for o, n, p, q in pairs]
    wrap: tuple[str, ...] = ()
    if delta > 0:
        wrappers = {q[:delta] for _, _, _, q in pairs}
        if len(wrappers) != 1:
            raise SurgeryError("the added prefixes differ between keys")
        wrap = wrappers.pop()
        pairs = [(o, n, p, q[delta:]) for o, n, p, q in pairs]
    edges: dict[tuple[tuple[str, ...], str], str] = {}
    for old, new, p, q in pairs:
        for i, (before, after) in enumerate(zip(p, q)):
            known = edges.setdefault((p[:i], before), after)
            if known != after:
                raise SurgeryError(f"block '{'.'.join(p[:i + 1])}' would be renamed both to '{known}' and to "
                                   f"'{after}'")
    _rename_edges(root, (), edges)
    for name in reversed(wrap):
        root = {"type": "HybridSequential", "config": {}, "children": [[name, root]]}
    result = {**document, "root": root}
    built = arch.build(result)
    keys = [k for k, _ in built.named_parameters()]
    if sorted(keys) != sorted(mapping.values()):
        extra = sorted(set(keys) - set(mapping.values()))
        lost = sorted(set(mapping.values()) - set(keys))
        raise SurgeryError(f"the renamed architecture would not match the keys (model has {brief_list(extra)}, "
                           f"file has {brief_list(lost)})")
    return result


def _rename_edges(node: dict[str, Any], path: tuple[str, ...], edges: dict[tuple[tuple[str, ...], str], str]) -> None:
    children = node.get("children") or []
    renamed = False
    for entry in children:
        name = entry[0]
        _rename_edges(entry[1], path + (name,), edges)
        new = edges.get((path, name), name)
        if new != name:
            entry[0], renamed = new, True
    if not renamed:
        return
    names = [entry[0] for entry in children]
    if len(set(names)) != len(names):
        raise SurgeryError(f"two blocks in '{'.'.join(path) or '(root)'}' would get the same name")
    cls = arch.REGISTRY[node["type"]]
    if not cls._arch_chain:
        raise SurgeryError(f"cannot rename children of {node['type']} at '{'.'.join(path) or '(root)'}': "
                           "its forward pass refers to them by name")
    if node["type"] not in ("Sequential", "HybridSequential"):
        node["type"], node["config"] = _chain_type(cls), {}


# -- replace-head -------------------------------------------------------------------------------

#: ``--init`` choices for replace-head and what they mean.
HEAD_INITS = {
    "xavier": "Gluon's Xavier (uniform, avg, magnitude 3); zero bias",
    "uniform": "Gluon's default Uniform(0.07); zero bias",
    "normal": "Normal(sigma=0.01); zero bias",
    "zeros": "all zeros",
    "torch": "PyTorch nn.Linear/Conv2d default: U(+-1/sqrt(fan_in)) for weight and bias",
    "keras": "Keras Dense default: glorot_uniform weight, zero bias",
}


@dataclass
class Head:
    """The layer chosen as the head, and why."""

    path: str
    kind: str  # 'dense' or 'conv'
    weight: str  # key in the file
    bias: str | None
    reason: str
    #: the axis that counts classes: 0 for (out, in, ...) weights, -1 for Keras (..., in, out) kernels
    out_axis: int = 0


#: weight names a head may have, and where each keeps its output axis
WEIGHT_NAMES = {"weight": 0, "kernel": -1}


@dataclass
class HeadPlan:
    head: Head
    old_classes: int
    classes: int
    tensors: dict[str, np.ndarray]  # new head tensors by file key
    architecture: dict[str, Any] | None
    graph: dict[str, Any] | None
    kept: list[int]
    init: str


def _structural_keys(reader: CheckpointReader) -> dict[str, str]:
    """structural key -> file key (identity for structural files)."""
    if reader.kind == STRUCTURAL:
        return {k: k for k in reader.tensors}
    return structural_view(reader)


def _head_at(reader: CheckpointReader, keys: dict[str, str], path: str, reason: str) -> Head:
    direct = [f"{path}.{name}" for name in WEIGHT_NAMES if f"{path}.{name}" in keys]
    if direct:
        weight = direct[0]
    else:
        weights = [k for k in keys if k.startswith(path + ".") and k.rpartition(".")[2] in WEIGHT_NAMES]
        if len(weights) != 1:
            if not weights:
                tops = sorted({k.split(".")[0] for k in keys})
                raise SurgeryError(f"no layer with a weight at '{path}' (top-level blocks: {brief_list(tops)})")
            raise SurgeryError(f"'{path}' holds several layers with weights ({brief_list(weights)}); "
                               "name one with --head")
        weight = weights[0]
    layer = weight.rpartition(".")[0]
    return _head_from_keys(reader, keys[weight], keys.get(f"{layer}.bias"), layer, reason)


def _head_from_keys(reader: CheckpointReader, weight: str, bias: str | None, path: str, reason: str) -> Head:
    shape = reader.tensors[weight].shape
    if len(shape) == 2:
        kind = "dense"
    elif len(shape) == 4:
        kind = "conv"
    else:
        raise SurgeryError(f"'{path}' has a weight of shape {shape}; a head must be dense (2-D) or a convolution (4-D)")
    out_axis = WEIGHT_NAMES.get(weight.rpartition(".")[2].rpartition("_")[2], 0)
    if bias is not None and reader.tensors[bias].shape != (shape[out_axis],):
        bias = None
    return Head(path, kind, weight, bias, reason, out_axis)


def find_head(reader: CheckpointReader, head: str | None = None) -> Head:
    """Find the classification head: ``--head``, else the zoo's ``output``, else the last dense layer."""
    keys = _structural_keys(reader)
    if head is not None:
        return _head_at(reader, keys, head, "named with --head")
    if any(k.startswith("output.") for k in keys):
        return _head_at(reader, keys, "output", "the model zoo's convention: the head is named 'output'")
    if reader.kind == STRUCTURAL and reader.architecture is not None:
        block = arch.build(reader.architecture)
        from .engine.nn import Dense
        dense = [p for p, b in block.named_blocks() if isinstance(b, Dense)]
        if dense:
            return _head_at(reader, keys, dense[-1], "the last Dense layer in the architecture")
    if reader.graph is not None:
        graph = symbol.Graph.from_json(reader.graph)
        for node in reversed(graph.op_nodes()):
            if node.op in ("FullyConnected", "Convolution") and len(node.inputs) >= 2:
                names = [graph.nodes[i].name for i, _, _ in node.inputs]
                if names[1] in reader.tensors:
                    bias = names[2] if len(names) > 2 and names[2] in reader.tensors else None
                    kind = "dense" if node.op == "FullyConnected" else "convolution"
                    return _head_from_keys(reader, names[1], bias, node.name,
                                           f"the last {kind} layer in graph order (node '{node.name}')")
    for key in reversed(list(reader.tensors)):
        info = reader.tensors[key]
        for name, axis in WEIGHT_NAMES.items():
            if key.endswith(name) and len(info.shape) == 2:
                stem = key[: -len(name)]
                bias = stem + "bias"
                if bias in reader.tensors and reader.tensors[bias].shape == (info.shape[axis],):
                    return _head_from_keys(reader, key, bias, stem.rstrip("._") or key,
                                           "the last 2-D weight with a matching bias (no architecture or graph)")
    raise SurgeryError("cannot find a head: no 'output' block, no dense layer; name one with --head PATH")


def plan_replace_head(reader: CheckpointReader, classes: int | None, head: str | None = None,
                      init: str = "xavier", seed: int | None = None,
                      keep_classes: list[int] | None = None) -> HeadPlan:
    """New head tensors with ``classes`` outputs; the architecture and graph updated to match."""
    if init not in HEAD_INITS:
        raise SurgeryError(f"unknown --init {init!r}; choose from {', '.join(HEAD_INITS)}")
    chosen = find_head(reader, head)
    _check_replaceable(reader, chosen)
    weight_info = reader.tensors[chosen.weight]
    axis = chosen.out_axis % len(weight_info.shape)
    old_classes = weight_info.shape[axis]
    kept = list(keep_classes or [])
    if classes is None:
        if not kept:
            raise SurgeryError("give --classes N (or --keep-classes to keep some of the old classes)")
        classes = len(kept)
    if classes <= 0:
        raise SurgeryError(f"--classes must be positive, not {classes}")
    bad = [i for i in kept if not 0 <= i < old_classes]
    if bad:
        raise SurgeryError(f"--keep-classes {brief_list(bad)} out of range: the old head has {old_classes} classes")
    if len(kept) > classes:
        raise SurgeryError(f"--keep-classes lists {len(kept)} classes but --classes is {classes}")
    if len(set(kept)) != len(kept):
        raise SurgeryError("--keep-classes lists a class twice")
    rng = np.random.default_rng(seed)
    initializer = init_mod.create(init)
    assert initializer is not None  # every HEAD_INITS name is an initializer alias
    rest = tuple(int(d) for i, d in enumerate(weight_info.shape) if i != axis)
    # initializers expect (out, in, ...): draw in that layout, then move the axis back
    drawn = initializer("weight", (classes, *rest), weight_info.dtype, rng)
    tensors = {chosen.weight: np.ascontiguousarray(np.moveaxis(drawn, 0, axis))}
    if chosen.bias is not None:
        bias_dtype = reader.tensors[chosen.bias].dtype
        tensors[chosen.bias] = initializer("bias", (classes,), bias_dtype, rng, fan_in=init_mod.fans(drawn.shape)[0])
    if kept:
        old_weight = np.moveaxis(reader.read(chosen.weight), axis, 0)
        np.moveaxis(tensors[chosen.weight], axis, 0)[: len(kept)] = old_weight[kept]
        if chosen.bias is not None:
            tensors[chosen.bias][: len(kept)] = reader.read(chosen.bias)[kept]
    architecture = reader.architecture
    if architecture is not None:
        architecture = _resize_in_architecture(architecture, chosen, classes)
    graph = reader.graph
    if graph is not None:
        graph = _resize_in_graph(graph, chosen, classes, {k: v.shape for k, v in tensors.items()})
    return HeadPlan(chosen, old_classes, classes, tensors, architecture, graph, kept, init)


def _check_replaceable(reader: CheckpointReader, head: Head) -> None:
    """A head must be the model's last layer with weights, and its tensors its own."""
    own = {head.weight, head.bias} - {None}
    shared = [f"{i.key} = {i.alias_of}" for i in reader.tensors.values()
              if (i.key in own and i.alias_of is not None) or (i.alias_of in own and i.key not in own)]
    if shared:
        raise SurgeryError(f"the head '{head.path}' has parameters shared with other layers ({brief_list(shared)}); "
                           "replacing it would change them too")
    later: list[str] = []
    if reader.kind == STRUCTURAL and reader.architecture is not None:
        block = arch.build(reader.architecture)
        layers = [path for path, b in block.named_blocks() if b._reg_params]
        if head.path in layers:
            later = layers[layers.index(head.path) + 1:]
    elif reader.graph is not None:
        graph = symbol.Graph.from_json(reader.graph)
        users = [node for node in graph.op_nodes()
                 if any(graph.nodes[i].is_variable and graph.nodes[i].name in reader.tensors for i, _, _ in node.inputs)]
        index = next((n for n, node in enumerate(users)
                      if any(graph.nodes[i].name == head.weight for i, _, _ in node.inputs)), None)
        if index is not None:
            later = [node.name for node in users[index + 1:]]
    if later:
        raise SurgeryError(f"'{head.path}' is not the model's last layer with weights (after it: {brief_list(later)}); "
                           "changing its outputs would break the layers after it")


def _resize_in_architecture(document: dict[str, Any], head: Head, classes: int) -> dict[str, Any] | None:
    result = copy.deepcopy(document)
    node = result["root"]
    parts = head.path.split(".") if head.path else []
    if head.path == "output" or head.path.startswith("output."):
        if "classes" in node.get("config", {}):
            node["config"]["classes"] = classes
    for part in parts:
        children = dict((name, child) for name, child in node.get("children") or [])
        if part not in children:
            return None  # the head is not in the recorded tree (e.g. a named file's graph node)
        node = children[part]
    key = {"Dense": "units", "Conv2D": "channels"}.get(node["type"])
    if key is None:
        raise SurgeryError(f"the head at '{head.path}' is a {node['type']}, not a Dense or Conv2D layer")
    node["config"][key] = classes
    return result


def _resize_in_graph(document: dict[str, Any], head: Head, classes: int,
                     shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    graph = symbol.Graph.from_json(document)
    index = {node.name: i for i, node in enumerate(graph.nodes)}
    if head.weight not in index:
        return graph.to_dict()
    weight_node = index[head.weight]
    for name, shape in shapes.items():
        if name in index and "__shape__" in graph.nodes[index[name]].attrs:
            graph.nodes[index[name]].attrs["__shape__"] = str(tuple(shape))
    for node in graph.op_nodes():
        if any(source == weight_node for source, _, _ in node.inputs):
            if node.op == "FullyConnected":
                node.attrs["num_hidden"] = str(classes)
            elif node.op == "Convolution":
                node.attrs["num_filter"] = str(classes)
    return graph.to_dict()


# -- convert ------------------------------------------------------------------------------------


@dataclass
class ConvertPlan:
    """Tensors of the output (in order, with roles and structural names) and where each comes from."""

    kind: str
    infos: list[TensorInfo]
    source: dict[str, str]  # output key -> input key
    architecture: dict[str, Any] | None
    graph: dict[str, Any] | None
    notes: list[str] = field(default_factory=list)


def _shape_model(block: Block, reader: CheckpointReader, keys: dict[str, str]) -> None:
    """Give the model the file's shapes and dtypes without reading any tensor data."""
    report = match(block.collect_params(), {k: (reader.tensors[v].shape, reader.tensors[v].dtype)
                                            for k, v in keys.items()})
    error = mismatch_error(report, f"'{reader.path}'", type(block).__name__, False, False)
    if error is not None:
        raise error
    for key, param in block.collect_params().items():
        info = reader.tensors[keys[key]]
        param.shape = info.shape
        param._dtype = info.dtype


def _input_shape(block: Block, document: dict[str, Any] | None, input_shape: tuple[int, ...] | None) -> tuple[int, ...]:
    if input_shape is not None:
        return input_shape
    if document is not None:
        specs = arch.input_specs(document)
        if len(specs) == 1:
            return specs[0][1]
    from .engine.model_zoo import vision
    if isinstance(block, (vision.AlexNet, vision.ResNetV1, vision.ResNetV2, vision.VGG, vision.SqueezeNet,
                          vision.MobileNet)):
        return (1, *vision.INPUT_SHAPE)
    raise SurgeryError("the model's input shape is unknown; give --input-shape (e.g. 1,3,224,224)")


def plan_to_named(reader: CheckpointReader, model: Block | None = None,
                  input_shape: tuple[int, ...] | None = None) -> ConvertPlan:
    """Structural -> name-keyed: trace the model (weights untouched) and key tensors by unique name."""
    if reader.kind != STRUCTURAL:
        raise SurgeryError(f"{reader.path} is already name-keyed")
    document = reader.architecture
    if model is None:
        if document is None:
            raise SurgeryError(f"{reader.path} records no architecture; name the model with --model ZOO_NAME")
        model = arch.build(document)
    if not isinstance(model, block_mod.HybridBlock):
        raise SurgeryError("only HybridBlocks can be traced into a graph")
    params = model.collect_params()
    shared = {i.key: params[i.alias_of] for i in reader.tensors.values() if i.alias_of in params}
    if shared:  # tensors stored once are one Parameter, and so one graph variable
        model.share_parameters(shared)
    keys = {k: k for k in reader.tensors}
    _shape_model(model, reader, keys)
    shape = _input_shape(model, document, input_shape)
    graph, params = model.trace(np.zeros(shape, np.float32), placeholders=True)
    structural: dict[int, list[str]] = {}
    for key, param in model.named_parameters():
        structural.setdefault(id(param), []).append(key)
    aux = set(graph.aux_variables())
    infos, source = [], {}
    for name in graph.variables():
        param = params.get(name)
        if param is None:
            continue
        names = tuple(structural[id(param)])
        src = reader.tensors[names[0]]
        infos.append(TensorInfo(name, src.shape, src.dtype, "aux" if name in aux else "arg", names))
        source[name] = names[0]
    notes = []
    unused = [k for k in reader.tensors if not any(k in i.structural for i in infos)]
    if unused:
        notes.append(f"{len(unused)} tensor(s) not used by the graph were left out: {brief_list(unused)}")
    architecture = arch.describe(model, [{"name": "data", "shape": list(shape), "dtype": "float32"}])
    return ConvertPlan(NAMED, infos, source, architecture, graph.to_dict(), notes)


def plan_to_structural(reader: CheckpointReader, model: Block | None = None,
                       input_shape: tuple[int, ...] | None = None) -> ConvertPlan:
    """Name-keyed -> structural: recorded structural names, else align with ``model``'s graph."""
    if reader.kind != NAMED:
        raise SurgeryError(f"{reader.path} is already structural")
    recorded = all(info.structural for info in reader.tensors.values()) and reader.tensors
    if recorded and model is None:
        infos, source, first = [], {}, {}
        for info in reader.tensors.values():
            for name in info.structural:
                if name in source:
                    continue
                alias = first.get(info.key)
                infos.append(TensorInfo(name, info.shape, info.dtype, alias_of=alias))
                source[name] = info.key
                first.setdefault(info.key, name)
        order = _architecture_order(reader.architecture)
        if order:
            rank = {k: i for i, k in enumerate(order)}
            infos = _ordered_with_aliases(infos, rank)
        return ConvertPlan(STRUCTURAL, infos, source, reader.architecture, None)
    if model is None:
        raise SurgeryError(f"{reader.path} does not record structural names; name the model with --model "
                           "ZOO_NAME to align its graph")
    return _align(reader, model, input_shape)


def _architecture_order(document: dict[str, Any] | None) -> list[str]:
    if document is None:
        return []
    try:
        return [k for k, _ in arch.build(document).named_parameters()]
    except ModelSurgeonError:
        return []


def _ordered_with_aliases(infos: list[TensorInfo], rank: dict[str, int]) -> list[TensorInfo]:
    ordered = sorted(infos, key=lambda i: rank.get(i.key, len(rank)))
    seen: set[str] = set()
    result = []
    for info in ordered:  # an alias must come after the key it points to
        if info.alias_of is not None and info.alias_of not in seen:
            info = TensorInfo(info.key, info.shape, info.dtype)
        result.append(info)
        seen.add(info.key)
    return result


def _usage(graph: Graph, names: set[str]) -> list[tuple[str, str, str]]:
    """(op, input role, variable) for each use of a parameter variable, in graph order."""
    from .engine import ops
    uses, seen = [], set()
    for node in graph.op_nodes():
        roles = ops.get(node.op, node.name).inputs(ops.get(node.op).parse(node.attrs, node.name))
        for position, (source, _, _) in enumerate(node.inputs):
            var = graph.nodes[source].name
            if graph.nodes[source].is_variable and var in names and var not in seen:
                role = roles[position] if position < len(roles) else f"input{position}"
                uses.append((node.op, role, var))
                seen.add(var)
    return uses


def _align(reader: CheckpointReader, model: Block, input_shape: tuple[int, ...] | None) -> ConvertPlan:
    if not isinstance(model, block_mod.HybridBlock):
        raise SurgeryError("only HybridBlocks can be traced for alignment")
    shape = _input_shape(model, None, input_shape)
    # Dimensions fixed only by the input (deferred in_units...) are wildcards when aligning:
    # the file may come from a different input size.
    declared = {id(p): p.shape for p in model.unique_parameters()}
    ours, params = model.trace(np.zeros(shape, np.float32), placeholders=True)
    key_of: dict[int, str] = {}
    for key, param in model.named_parameters():
        key_of.setdefault(id(param), key)
    our_uses = _usage(ours, set(params))
    notes = []
    if reader.graph is not None:
        theirs = symbol.Graph.from_json(reader.graph)
        their_uses = _usage(theirs, set(reader.tensors))
        how = "graph order, operator and shape"
    else:
        their_uses = [("?", "?", key) for key in reader.tensors]
        our_uses = [("?", "?", var) for var in params]
        how = "file order and shape only (no graph to align with)"
        notes.append("aligned by file order and shape only: there is no -symbol.json beside the file")
    if len(their_uses) != len(our_uses):
        raise SurgeryError(f"cannot align: the file has {len(their_uses)} parameters in its graph, the model "
                           f"{len(our_uses)}")
    infos, source = [], {}
    for position, ((op_a, role_a, var_a), (op_b, role_b, var_b)) in enumerate(zip(their_uses, our_uses)):
        file_shape = reader.tensors[var_a].shape
        param = params[var_b]
        model_shape = declared[id(param)]
        if (op_a, role_a) != (op_b, role_b) or not _compatible(model_shape, file_shape):
            raise SurgeryError(
                f"cannot align parameter #{position + 1}: the file has '{var_a}' ({op_a} {role_a}, shape "
                f"{file_shape}), the model has '{key_of[id(param)]}' ({op_b} {role_b}, shape {model_shape})")
        key = key_of[id(param)]
        infos.append(TensorInfo(key, file_shape, reader.tensors[var_a].dtype))
        source[key] = var_a
    rank = {k: i for i, (k, _) in enumerate(model.named_parameters())}
    infos = sorted(infos, key=lambda i: rank[i.key])
    for key, param in model.collect_params().items():
        param._shape = declared[id(param)]  # forget the shapes the placeholder input implied
        if key in source:
            param.shape = reader.tensors[source[key]].shape
    notes.append(f"aligned {len(infos)} parameters by {how}")
    inputs = [{"name": "data", "shape": list(shape), "dtype": "float32"}]
    try:  # record the input shape only if the file's weights accept it
        model.trace(np.zeros(shape, np.float32), placeholders=True)
    except ModelSurgeonError:
        inputs = []
        notes.append(f"the weights do not fit input {shape}; no input shape recorded (give --input-shape)")
    return ConvertPlan(STRUCTURAL, infos, source, arch.describe(model, inputs), None, notes)


def _compatible(model_shape: tuple[int, ...] | None, file_shape: tuple[int, ...]) -> bool:
    if model_shape is None:
        return True
    return len(model_shape) == len(file_shape) and all(m in (-1, f) for m, f in zip(model_shape, file_shape))


# -- diff ---------------------------------------------------------------------------------------


@dataclass
class DiffResult:
    only_a: list[str]
    only_b: list[str]
    changed: list[dict[str, Any]]  # key, shape/dtype in a and b
    values: list[dict[str, Any]]  # key, max_abs_diff, equal
    scheme: str

    @property
    def equal(self) -> bool:
        return not (self.only_a or self.only_b or self.changed or any(not v["equal"] for v in self.values))


def comparable_keys(a: CheckpointReader, b: CheckpointReader) -> tuple[dict[str, str], dict[str, str], str]:
    """Keys to compare two files by: structural names when either side is name-keyed and records them."""
    va, vb = _structural_keys(a), _structural_keys(b)
    complete = len(va) >= len(a.tensors) and len(vb) >= len(b.tensors)
    if a.kind == b.kind and (a.kind == STRUCTURAL or not complete or set(a.tensors) & set(b.tensors)):
        return {k: k for k in a.tensors}, {k: k for k in b.tensors}, f"{a.kind} keys"
    if va and vb and complete:
        return va, vb, "structural names (one file is name-keyed and records them)"
    return {k: k for k in a.tensors}, {k: k for k in b.tensors}, "raw keys (schemes differ and no structural names are recorded)"


def diff(a: CheckpointReader, b: CheckpointReader, values: bool = False, progress=None) -> DiffResult:
    """Compare two checkpoints key by key; with ``values``, stream the largest absolute difference."""
    ka, kb, scheme = comparable_keys(a, b)
    only_a = [k for k in ka if k not in kb]
    only_b = [k for k in kb if k not in ka]
    changed, compared = [], []
    common = [k for k in ka if k in kb]
    for key in common:
        ia, ib = a.tensors[ka[key]], b.tensors[kb[key]]
        if ia.shape != ib.shape or ia.dtype != ib.dtype:
            changed.append({"key": key, "a": {"shape": list(ia.shape), "dtype": str(ia.dtype)},
                            "b": {"shape": list(ib.shape), "dtype": str(ib.dtype)}})
    if values:
        changed_keys = {c["key"] for c in changed if c["a"]["shape"] != c["b"]["shape"]}
        todo = [k for k in common if k not in changed_keys]
        for done, key in enumerate(todo, 1):
            xa, xb = a.read(ka[key]), b.read(kb[key])
            same = bool(np.array_equal(xa, xb, equal_nan=xa.dtype.kind == "f" and xb.dtype.kind == "f"))
            delta = 0.0 if same or xa.size == 0 else float(np.max(np.abs(xa.astype(np.float64) - xb.astype(np.float64))))
            compared.append({"key": key, "max_abs_diff": delta, "equal": same})
            if progress is not None:
                progress(done, len(todo))
    return DiffResult(only_a, only_b, changed, compared, scheme)
