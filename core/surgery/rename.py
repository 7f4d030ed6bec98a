"""Rename keys: the plan of a rename, with the architecture or graph following the new keys."""

from __future__ import annotations

import copy
import re
from collections import Counter
from typing import TYPE_CHECKING, Any

from ..errors import SurgeryError, brief_list
from ..formats.base import NAMED, STRUCTURAL, CheckpointReader, TensorInfo
from ..lazy import lazy_module
from .plan import Copy, Plan, carried_metadata
from .rules import Rule

arch = lazy_module("modelsurgeon.core.engine.architecture")
block_mod = lazy_module("modelsurgeon.core.engine.block")
symbol = lazy_module("modelsurgeon.core.engine.symbol")

if TYPE_CHECKING:
    from ..engine.block import Block


def plan_rename(reader: CheckpointReader, rules: list[Rule], strict: bool = False,
                drop_architecture: bool = False) -> Plan:
    """Apply ``rules`` in order to every key; refuse collisions, empty segments and (strict) unused rules.

    The plan copies every tensor under its new key; the architecture (structural files) or graph
    (name-keyed files) follows the rename, or (``drop_architecture``) is left out with a note.
    """
    if not rules:
        raise SurgeryError("no rename rules given")
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
        problems.append(f"{len(unused)} rule(s) matched no key (`strict`): {brief_list(unused)}")
    if problems:
        raise SurgeryError("; ".join(problems) + "; nothing was written")
    changes = [(old, new) for old, new in mapping.items() if old != new]
    architecture, graph, notes = reader.architecture, reader.graph, []
    if changes and reader.kind == STRUCTURAL and reader.architecture is not None:
        try:
            architecture = rename_architecture(reader.architecture, mapping)
        except SurgeryError as exc:
            if not drop_architecture:
                raise SurgeryError(f"{exc} (use `drop_architecture` to write the renamed keys without it)") from None
            architecture = None
            notes.append(f"architecture dropped: {exc}")
    if changes and reader.graph is not None and reader.kind == NAMED:
        graph = symbol.Graph.from_json(reader.graph).rename_variables(mapping).to_dict()
    if unused:
        notes.append(f"{len(unused)} rule(s) matched nothing: {', '.join(unused)}")
    tensors = [(TensorInfo(mapping[i.key], i.shape, i.dtype, i.role, i.structural,
                           mapping[i.alias_of] if i.alias_of else None), Copy(reader, i.key))
               for i in reader.tensors.values()]
    details = {"changes": [{"old": o, "new": n} for o, n in changes], "unused_rules": unused,
               "architecture_kept": architecture is not None if reader.architecture else None}
    return Plan.of(tensors, reader.kind, architecture=architecture, graph=graph, metadata=carried_metadata(reader),
                   readers=[reader], notes=notes, details=details)


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
    for _old, _new, p, q in pairs:
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
        _rename_edges(entry[1], (*path, name), edges)
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
