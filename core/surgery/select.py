"""Select tensors: keep or drop keys by regular expression, or extract a sub-tree as the new root.

>>> import numpy as np
>>> from modelsurgeon.core.formats.base import TensorInfo
>>> keys = ["features.0.weight", "features.0.bias", "output.weight", "output.bias"]
>>> selected(keys, [("keep", "^features"), ("drop", "bias$")])
['features.0.weight']
"""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any

from ..errors import ModelSurgeonError, SurgeryError, brief_list
from ..formats.base import NAMED, STRUCTURAL, CheckpointReader, TensorInfo
from ..lazy import lazy_module
from .plan import Copy, Plan, carried_metadata

arch = lazy_module("modelsurgeon.core.engine.architecture")
symbol = lazy_module("modelsurgeon.core.engine.symbol")

#: A rule: ('keep' or 'drop', regular expression searched in the key).
SelectRule = tuple[str, str]


def _compile(rules: Sequence[SelectRule]) -> list[tuple[str, re.Pattern[str]]]:
    compiled = []
    for action, pattern in rules:
        if action not in ("keep", "drop"):
            raise SurgeryError(f"unknown selection {action!r}; use `keep` or `drop`")
        try:
            compiled.append((action, re.compile(pattern)))
        except re.error as exc:
            raise SurgeryError(f"bad regular expression {pattern!r} in `{action}`: {exc}") from None
    return compiled


def selected(keys: Sequence[str], rules: Sequence[SelectRule]) -> list[str]:
    """The keys ``rules`` select, in order: starting from every key (or none, when the first rule
    keeps), each ``keep`` adds the keys its regex matches and each ``drop`` removes them."""
    compiled = _compile(rules)
    chosen = set() if compiled and compiled[0][0] == "keep" else set(keys)
    for action, pattern in compiled:
        hits = {k for k in keys if pattern.search(k)}
        chosen = chosen | hits if action == "keep" else chosen - hits
    return [k for k in keys if k in chosen]


def plan_select(reader: CheckpointReader, rules: Sequence[SelectRule] = (), root: str | None = None) -> Plan:
    """A plan holding the tensors ``rules`` select (see :func:`selected`), after ``root`` (if given)
    kept only the keys under that prefix and stripped it. Tensors are copied unchanged; the
    architecture follows where it can (the sub-block's node, or whole blocks removed from a
    sequential container), the graph where every tensor it uses is still there; else a note says
    which was left out."""
    keys = list(reader.tensors)
    problems = []
    compiled = _compile(rules)
    prefix = None
    if root is not None:
        prefix = root.strip(".")
        if not prefix:
            raise SurgeryError("`root` must name a block path, such as features or model.encoder")
        under = [k for k in keys if k.startswith(prefix + ".")]
        if not under:
            tops = sorted({k.rsplit(".", 1)[0] for k in keys if "." in k})
            raise SurgeryError(f"no tensors under `root` '{prefix}' (blocks with tensors: {brief_list(tops)})")
        renamed = {k[len(prefix) + 1:]: k for k in under}
    else:
        renamed = {k: k for k in keys}
    chosen = selected(list(renamed), rules)
    unused = [p.pattern for _, p in compiled if not any(p.search(k) for k in renamed)]
    if not chosen:
        problems.append("the selection keeps no tensor")
    if problems:
        raise SurgeryError("; ".join(problems) + "; nothing was written")
    chosen_set = set(chosen)
    source_of = {new: renamed[new] for new in chosen}
    new_of = {old: new for new, old in source_of.items()}
    tensors = []
    holder: dict[str, str] = {}
    for new in chosen:
        info = reader.tensors[source_of[new]]
        alias = None
        if info.alias_of is not None:  # a tensor stored once under several keys: the first kept key holds it
            group = info.alias_of
            if group in new_of:
                alias = new_of[group]
            else:
                alias = holder.get(group)
                holder.setdefault(group, new)
        tensors.append((TensorInfo(new, info.shape, info.dtype, info.role, info.structural, alias, info.extra),
                        Copy(reader, info.key)))
    notes = []
    if unused:
        notes.append(f"{len(unused)} pattern(s) matched no key: {', '.join(unused)}")
    dropped = [k for k in keys if k not in new_of]
    architecture = graph = None
    if reader.architecture is not None:
        architecture, why = _architecture(reader, prefix, chosen_set, keys[0] if keys else None,
                                          source_of.get(chosen[0]))
        if architecture is None:
            notes.append(f"the architecture was left out: {why}")
    if reader.graph is not None:
        graph, why = _graph(reader, new_of)
        if graph is None:
            notes.append(f"the graph was left out: {why}")
    details = {"root": prefix, "rules": [{"action": a, "pattern": p} for a, p in rules], "kept": chosen,
               "dropped": dropped, "renamed": [{"old": source_of[n], "new": n} for n in chosen if source_of[n] != n],
               "architecture_kept": architecture is not None if reader.architecture is not None else None,
               "graph_kept": graph is not None if reader.graph is not None else None}
    return Plan.of(tensors, reader.kind, architecture=architecture, graph=graph, metadata=carried_metadata(reader),
                   readers=[reader], notes=notes, details=details)


def _architecture(reader: CheckpointReader, prefix: str | None, chosen: set[str], first_key: str | None,
                  first_kept: str | None) -> tuple[dict[str, Any] | None, str]:
    document = reader.architecture
    assert document is not None
    if reader.kind != STRUCTURAL:  # a name-keyed file's architecture goes with its graph, whole
        whole = prefix is None and chosen == set(reader.tensors)
        return (document, "") if whole else (None, "tensors were dropped from a name-keyed file")
    root = copy.deepcopy(document["root"])
    inputs = document.get("inputs") or []
    if prefix is not None:
        for part in prefix.split("."):
            children = dict(root.get("children") or [])
            if part not in children:
                return None, f"'{prefix}' is not a block of the recorded architecture"
            root = children[part]
        inputs = []  # the sub-block takes another input than the model
    pruned = _prune(root, "", chosen)
    if pruned is not None:
        return None, pruned
    result = {**document, "root": root, "inputs": inputs if first_kept == first_key else []}
    try:
        keys = {k for k, _ in arch.build(result).named_parameters()}
    except ModelSurgeonError as exc:
        return None, str(exc)
    if keys != chosen:
        missing = sorted(keys - chosen)
        return None, (f"the kept tensors are not whole blocks (it would also need {brief_list(missing)})"
                      if missing else "it does not describe the kept tensors")
    return result, ""


def _param_keys(node: dict[str, Any], path: str) -> list[str]:
    """The parameter keys a node's block has (built alone, so no data is read)."""
    block = arch.build({"format": "modelsurgeon-architecture", "version": 1, "root": node})
    return [f"{path}.{k}" if path else k for k, _ in block.named_parameters()]


def _prune(node: dict[str, Any], path: str, chosen: set[str]) -> str | None:
    """Remove from sequential containers the children none of whose tensors are kept; the reason it
    cannot follow, or None."""
    children = node.get("children") or []
    keep = []
    for name, child in children:
        where = f"{path}.{name}" if path else name
        try:
            owned = _param_keys(child, where)
        except ModelSurgeonError as exc:
            return str(exc)
        if owned and not any(k in chosen for k in owned):
            cls = arch.REGISTRY.get(node.get("type", ""))
            if cls is None or not cls._arch_chain:
                return f"'{where}' was dropped but its container {node.get('type')} refers to it by name"
            continue
        if owned and not all(k in chosen for k in owned):
            reason = _prune(child, where, chosen)
            if reason is not None:
                return reason
        keep.append([name, child])
    if "children" in node:
        node["children"] = keep
    return None


def _graph(reader: CheckpointReader, new_of: dict[str, str]) -> tuple[dict[str, Any] | None, str]:
    assert reader.graph is not None
    if reader.kind != NAMED:
        return reader.graph, ""
    graph = symbol.Graph.from_json(reader.graph)
    used = [name for name in graph.variables() if name in reader.tensors]
    lost = [name for name in used if name not in new_of]
    if lost:
        return None, f"it uses {len(lost)} dropped tensor(s) ({brief_list(lost)})"
    if any(new_of[name] != name for name in used):
        graph = graph.rename_variables({name: new_of[name] for name in used})
    return graph.to_dict(), ""


__all__ = ["plan_select", "selected"]
