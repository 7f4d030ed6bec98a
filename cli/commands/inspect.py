"""``modelsurgeon inspect``: what a checkpoint holds, from metadata only unless --stats."""

from __future__ import annotations

import dataclasses
import os
import re
from collections import Counter
from typing import Any

import click
import numpy as np

from modelsurgeon.core import binding
from modelsurgeon.core.errors import SurgeryError
from modelsurgeon.core.formats.base import CheckpointReader, TensorInfo
from modelsurgeon.core.keytree import KeyNode, key_tree

from ..options import member_option, output_options, reader_options
from ..output import Output, human_bytes, printable, shape_text


def tensor_stats(array: np.ndarray) -> dict[str, Any]:
    """min/max/mean/std over finite values, and NaN/Inf counts (one tensor at a time)."""
    values = array.astype(np.float64, copy=False) if array.dtype.kind in "fiub" else array
    if values.dtype.kind == "f":
        nan, inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
        finite = values[np.isfinite(values)] if nan or inf else values
    else:
        nan = inf = 0
        finite = values
    if finite.size == 0:
        return {"min": None, "max": None, "mean": None, "std": None, "nan": nan, "inf": inf}
    return {"min": float(finite.min()), "max": float(finite.max()), "mean": float(finite.mean()),
            "std": float(finite.std()), "nan": nan, "inf": inf}


def describe_architecture(reader: CheckpointReader) -> dict[str, Any] | None:
    document = reader.architecture
    if not isinstance(document, dict) or not isinstance(document.get("root"), dict):
        return None
    types: Counter[str] = Counter()

    def walk(node: dict[str, Any]) -> None:
        types[str(node.get("type"))] += 1
        for _, child in node.get("children") or []:
            if isinstance(child, dict):
                walk(child)

    walk(document["root"])
    return {"root": document["root"].get("type"), "blocks": sum(types.values()), "types": dict(sorted(types.items())),
            "inputs": document.get("inputs") or []}


def describe_graph(reader: CheckpointReader) -> dict[str, Any] | None:
    if reader.graph is None:
        return None
    from modelsurgeon.core.engine.symbol import Graph
    graph = Graph.from_json(reader.graph)
    operators = Counter(node.op for node in graph.op_nodes())
    inputs = [name for name in graph.variables() if name not in reader.tensors]
    return {"nodes": len(graph.nodes), "operators": dict(sorted(operators.items())), "inputs": inputs,
            "outputs": len(graph.heads)}


def tensor_record(info: TensorInfo) -> dict[str, Any]:
    record: dict[str, Any] = {"key": info.key, "shape": list(info.shape), "dtype": str(info.dtype),
                              "size": info.size, "bytes": info.nbytes}
    if info.role:
        record["role"] = info.role
    if info.structural:
        record["structural"] = list(info.structural)
    if info.alias_of:
        record["alias_of"] = info.alias_of
    return record


def _regex(ctx: click.Context, param: click.Parameter, pattern: str | None) -> re.Pattern[str] | None:
    """Click callback: --filter compiled, or a usage error."""
    try:
        return re.compile(pattern) if pattern is not None else None
    except re.error as exc:
        raise click.BadParameter(f"bad regular expression {pattern!r}: {exc}") from None


_regex.bad_example = "("  # type: ignore[attr-defined]


@click.command()
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--tree", is_flag=True,
              help="Group keys by path, with per-subtree counts; fold repeated numbered blocks.")
@click.option("--filter", "pattern", metavar="REGEX", callback=_regex,
              help="Only tensors whose key (or recorded structural name) matches REGEX, searched anywhere.")
@click.option("--stats", is_flag=True, help="Add min/max/mean/std, NaN/Inf counts and an 8-bin histogram of the finite "
              "values (reads every tensor, one at a time).")
@click.option("--ops", "operators", is_flag=True,
              help="List the operators the file's graph uses, how often, and whether modelsurgeon runs each "
                   "(FILE may also be a -symbol.json): whether a model will run, at a glance.")
@member_option
@output_options
def inspect(file: str, tree: bool, pattern: re.Pattern[str] | None, stats: bool, operators: bool, member: str | None,
            out: Output) -> None:
    """Show what a checkpoint holds: every tensor's key, shape, dtype and size.

    Reads only metadata unless --stats is given. Name-keyed files show each
    tensor's structural name beside its unique name.

    \b
    Examples:
      modelsurgeon inspect sample_models/cnn.h5
      modelsurgeon inspect sample_models/cnn.h5 --tree
      modelsurgeon inspect model.h5 --filter 'output\\.' --stats --json | jq '.tensors[].stats'
      modelsurgeon inspect model-symbol.json --ops
    """
    if operators:
        _inspect_operators(file, out, member)
        return
    regex = pattern
    with binding.open_checkpoint(file, reader_options(member)) as reader:
        infos = [i for i in reader.tensors.values()
                 if regex is None or any(regex.search(name) for name in (i.key, *i.structural))]
        records = [tensor_record(i) for i in infos]
        if stats:
            from modelsurgeon.core.visual.stats import histogram  # not for every inspect: visual is large
            total, done = sum(i.nbytes for i in infos), 0
            with out.progress("reading", total) as progress:
                for record, info in zip(records, infos):
                    array = reader.read(info.key)
                    record["stats"] = tensor_stats(array)
                    record["histogram"] = histogram(array)
                    done += info.nbytes
                    if progress is not None:
                        progress(done, total)
        unique = [i for i in infos if i.alias_of is None]
        summary = {"tensors": len(infos), "parameters": sum(i.size for i in unique),
                   "bytes": sum(i.nbytes for i in unique), "shared": len(infos) - len(unique)}
        document: dict[str, Any] = {"file": file, "format": reader.format, "kind": reader.kind,
                                    "summary": summary, "tensors": records,
                                    "architecture": describe_architecture(reader), "graph": describe_graph(reader),
                                    "metadata": {k: v for k, v in reader.metadata.items() if len(v) < 4096},
                                    "notes": list(reader.notes)}
        root = key_tree(_tree_view(infos)) if tree else None
        if tree:
            document["tree"] = [child.to_dict() for child in root.children]  # type: ignore[union-attr]
        if out.json:
            out.emit("inspect", document)
            return
        _print_inspect(out, document, root, reader.kind == "named", stats)
        for note in document["notes"]:
            out.note(f"note: {note}")


def _inspect_operators(file: str, out: Output, member: str | None = None) -> None:
    """``--ops``: the operator census of the file's graph (or of a bare ``-symbol.json``)."""
    from modelsurgeon.core.engine.census import census
    if file.lower().endswith(".json") and not os.path.isdir(file):
        graph: Any = binding.read_graph_file(file)
    else:
        with binding.open_checkpoint(file, reader_options(member)) as reader:
            graph = reader.graph
    if graph is None:
        raise SurgeryError(f"{file} has no graph (an MXNet export's -symbol.json, or a name-keyed file): "
                           "files with an architecture run on the engine's own layers")
    report = census(graph)
    if out.json:
        out.emit("inspect", {"file": file, "ops": report})
        return
    rows = [(op["op"], op["count"], "yes" if op["supported"] and "problem" not in op else "NO", op["first_node"],
             op.get("problem", "")) for op in report["operators"]]
    out.table(["op", "count", "supported", "first node", "problem"], rows,
              justify=["left", "right", "left", "left", "left"])
    unsupported = report["unsupported"]
    kinds = len(report["operators"])
    if unsupported:
        out.note(f"{len(unsupported)} of {kinds} operators cannot run: {', '.join(unsupported)}")
    else:
        out.note(f"all {kinds} operators run ({report['nodes']} nodes)")


def _tree_view(infos: list[TensorInfo]) -> list[TensorInfo]:
    """Name-keyed files that record structural names are drawn as the model's tree."""
    if infos and all(i.structural for i in infos):
        return [dataclasses.replace(i, key=i.structural[0]) for i in infos]
    return infos


def _print_inspect(out: Output, doc: dict[str, Any], root: KeyNode | None, named: bool, stats: bool) -> None:
    summary = doc["summary"]
    header = (f"{doc['file']}: {doc['format']}, {doc['kind']}, {summary['tensors']} tensors, "
              f"{summary['parameters']:,} parameters, {human_bytes(summary['bytes'])}")
    if summary["shared"]:
        header += f" ({summary['shared']} shared)"
    if root is not None:
        _print_tree(out, root, header)
    else:
        columns = ["key"] + (["structural"] if named else []) + ["shape", "dtype", "size", "bytes"]
        spark = stats and out.stdout_is_terminal
        if stats:
            from modelsurgeon.core.visual.stats import sparkline
            columns += ["min", "max", "mean", "std", "nan", "inf"] + (["histogram"] if spark else [])
        rows = []
        for record in doc["tensors"]:
            row = [record["key"] + (f" -> {record['alias_of']}" if "alias_of" in record else "")]
            if named:
                row.append(", ".join(record.get("structural", [])) or "-")
            row += [shape_text(record["shape"]), record["dtype"], f"{record['size']:,}", human_bytes(record["bytes"])]
            if stats:
                s = record["stats"]
                row += ["-" if s[k] is None else f"{s[k]:.4g}" for k in ("min", "max", "mean", "std")]
                row += [s["nan"], s["inf"]] + ([sparkline(record["histogram"])] if spark else [])
            rows.append(row)
        if out.stdout_is_terminal:
            out.console().print(printable(header), markup=False)
        out.table(columns, rows, justify=["left"] * (2 if named else 1) + ["left", "left", "right", "right"]
                  + ["right"] * (6 if stats else 0) + (["left"] if spark else []))
    if out.stdout_is_terminal:
        if doc["architecture"]:
            a = doc["architecture"]
            shapes = ", ".join(shape_text(i["shape"]) for i in a["inputs"]) or "unknown"
            out.line(f"architecture: {a['root']} with {a['blocks']} blocks; input {shapes}")
        if doc["graph"]:
            g = doc["graph"]
            ops = ", ".join(f"{op} x{n}" for op, n in g["operators"].items())
            out.line(f"graph: {g['nodes']} nodes, inputs {', '.join(g['inputs']) or '-'}; {ops}")


def _print_tree(out: Output, root: KeyNode, header: str) -> None:
    def label(node: KeyNode) -> str:
        name = node.name if node.repeat == 1 else f"# x{node.repeat} [{node.indices[0]}..{node.indices[-1]}]"
        if node.info is not None:
            return f"{name}  {shape_text(node.info.shape)} {node.info.dtype}"
        return f"{name}  ({node.tensors} tensors, {node.params:,} params)"

    if out.stdout_is_terminal:
        from rich.text import Text
        from rich.tree import Tree
        tree = Tree(Text(printable(header)))

        def add(branch: Any, node: KeyNode) -> None:
            for child in node.children:
                add(branch.add(Text(printable(label(child)))), child)

        add(tree, root)
        out.console().print(tree)
        return

    def walk(node: KeyNode, depth: int) -> None:
        for child in node.children:
            out.line("  " * depth + label(child))
            walk(child, depth + 1)

    walk(root, 0)


command = inspect
