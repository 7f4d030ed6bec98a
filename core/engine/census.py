"""Operator census of a graph: which operators it uses, how often, and whether we can run them.

The triage a migration starts with (``inspect --ops``): one pass over the nodes, JSON-friendly.

>>> doc = {"nodes": [{"op": "null", "name": "data", "inputs": []},
...                  {"op": "relu", "name": "r0", "inputs": [[0, 0, 0]]},
...                  {"op": "LRN", "name": "lrn0", "inputs": [[1, 0, 0]]},
...                  {"op": "relu", "name": "r1", "inputs": [[2, 0, 0]]}], "heads": [[3, 0, 0]]}
>>> report = census(doc)
>>> report["supported"], report["unsupported"]
(False, ['LRN'])
>>> [(op["op"], op["count"], op["supported"], op["first_node"]) for op in report["operators"]]
[('LRN', 1, False, 'lrn0'), ('relu', 2, True, 'r0')]
"""

from __future__ import annotations

from typing import Any

from ..errors import ModelSurgeonError
from . import ops
from .symbol import Graph

#: Version of the census document's layout.
CENSUS_VERSION = 1


def census(graph: Graph | dict[str, Any] | str | bytes) -> dict[str, Any]:
    """The operators ``graph`` uses (a :class:`Graph`, or ``-symbol.json`` text or document).

    Returns ``{"version", "nodes", "variables", "supported", "unsupported", "operators"}`` where
    ``operators`` lists, sorted by name, each operator's ``op``, ``count``, ``supported``, the
    operator it runs as (``canonical``: ``_npi_add`` runs as ``broadcast_add``...), its
    ``first_node`` and, when it is supported but a node's attributes are not, ``problem`` (the
    first such node's error). ``supported`` is True when every node can run.
    """
    if not isinstance(graph, Graph):
        graph = Graph.from_json(graph, check_attrs=False)  # bad attributes are reported per operator
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    problems: dict[str, str] = {}
    variables = 0
    for node in graph.nodes:
        if node.is_variable:
            variables += 1
            continue
        counts[node.op] = counts.get(node.op, 0) + 1
        first.setdefault(node.op, node.name)
        spec = ops.supported_spec(node.op)
        if spec is not None and node.op not in problems:
            try:
                spec.parse(node.attrs, node.name)
            except ModelSurgeonError as exc:
                problems[node.op] = str(exc)
    operators = []
    for op in sorted(counts):
        spec = ops.supported_spec(op)
        entry: dict[str, Any] = {"op": op, "count": counts[op], "supported": spec is not None and op not in problems,
                                 "canonical": spec.name if spec is not None else None, "first_node": first[op]}
        if op in problems:
            entry["problem"] = problems[op]
        operators.append(entry)
    unsupported = [entry["op"] for entry in operators if not entry["supported"]]
    return {"version": CENSUS_VERSION, "nodes": len(graph.nodes), "variables": variables,
            "supported": not unsupported, "unsupported": unsupported, "operators": operators}
