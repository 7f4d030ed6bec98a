"""Commands that read: inspect, diff, run."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from typing import Any

import click
import numpy as np

from modelsurgeon.core import checkpoint
from modelsurgeon.core.errors import ModelSurgeonError, SurgeryError
from modelsurgeon.core.formats.base import CheckpointReader, TensorInfo
from modelsurgeon.core.keytree import KeyNode, key_tree

from .errors import ExitCode
from .main import cli, output_options
from .output import Output, human_bytes, printable, shape_text


def parse_shape(text: str) -> tuple[int, ...]:
    """``'1,3,224,224'`` or ``'1x3x224x224'`` -> (1, 3, 224, 224)."""
    try:
        dims = tuple(int(part) for part in re.split(r"[,x\s]+", text.strip(" ()[]")) if part)
    except ValueError:
        raise SurgeryError(f"cannot read shape {text!r}; write it like 1,3,224,224") from None
    if not dims or any(d <= 0 for d in dims):
        raise SurgeryError(f"shape {text!r} must be positive integers like 1,3,224,224")
    return dims


# -- inspect ------------------------------------------------------------------------------------

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


@cli.command()
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--tree", is_flag=True, help="Group keys by path, with per-subtree counts; fold repeated numbered blocks.")
@click.option("--filter", "pattern", metavar="REGEX",
              help="Only tensors whose key (or recorded structural name) matches REGEX, searched anywhere.")
@click.option("--stats", is_flag=True, help="Add min/max/mean/std, NaN/Inf counts and an 8-bin histogram of the finite "
              "values (reads every tensor, one at a time).")
@output_options
def inspect(file: str, tree: bool, pattern: str | None, stats: bool, out: Output) -> None:
    """Show what a checkpoint holds: every tensor's key, shape, dtype and size.

    Reads only metadata unless --stats is given. Name-keyed files show each
    tensor's structural name beside its unique name.

    \b
    Examples:
      modelsurgeon inspect sample_models/cnn.h5
      modelsurgeon inspect sample_models/cnn.h5 --tree
      modelsurgeon inspect model.h5 --filter 'output\\.' --stats --json | jq '.tensors[].stats'
    """
    try:
        regex = re.compile(pattern) if pattern is not None else None
    except re.error as exc:
        raise SurgeryError(f"bad --filter regex {pattern!r}: {exc}") from None
    with checkpoint.open_checkpoint(file) as reader:
        infos = [i for i in reader.tensors.values()
                 if regex is None or any(regex.search(name) for name in (i.key, *i.structural))]
        records = [tensor_record(i) for i in infos]
        if stats:
            from modelsurgeon.core.visual.stats import histogram  # not for every inspect: visual is large
            for record, info in zip(records, infos):
                array = reader.read(info.key)
                record["stats"] = tensor_stats(array)
                record["histogram"] = histogram(array)
        unique = [i for i in infos if i.alias_of is None]
        summary = {"tensors": len(infos), "parameters": sum(i.size for i in unique),
                   "bytes": sum(i.nbytes for i in unique), "shared": len(infos) - len(unique)}
        document: dict[str, Any] = {"file": file, "format": reader.format, "kind": reader.kind,
                                    "summary": summary, "tensors": records,
                                    "architecture": describe_architecture(reader), "graph": describe_graph(reader),
                                    "metadata": {k: v for k, v in reader.metadata.items() if len(v) < 4096}}
        root = key_tree(_tree_view(infos)) if tree else None
        if tree:
            document["tree"] = [child.to_dict() for child in root.children]  # type: ignore[union-attr]
        if out.json:
            out.emit("inspect", document)
            return
        _print_inspect(out, document, root, reader.kind == "named", stats)


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


# -- diff ---------------------------------------------------------------------------------------

@cli.command()
@click.argument("a", type=click.Path(dir_okay=True))
@click.argument("b", type=click.Path(dir_okay=True))
@click.option("--values", is_flag=True, help="Also compare values: the largest absolute difference per tensor.")
@click.option("--html", "report", type=click.Path(dir_okay=False), metavar="REPORT.html",
              help="Also write a visual report: B's model with added, removed, renamed, reshaped and "
                   "value-changed tensors coloured (implies --values).")
@click.option("--force", is_flag=True, help="Overwrite the --html report if it exists.")
@output_options
def diff(a: str, b: str, values: bool, report: str | None, force: bool, out: Output) -> int:
    """Compare two checkpoints: keys only in A or B, shape/dtype changes, and (--values) values.

    Works across the two key schemes when a name-keyed file records structural names.
    Exits 0 when the checkpoints are the same, 1 when they differ (like diff(1)).

    \b
    Examples:
      modelsurgeon diff sample_models/cnn.h5 cnn10.h5 --values
      modelsurgeon diff sample_models/cnn.h5 cnn10.h5 --html report.html
    """
    from modelsurgeon.core.surgery import diff as compare
    if report is not None:
        import os
        from modelsurgeon.core.errors import OutputExistsError
        if os.path.exists(report) and not force:
            raise OutputExistsError(f"{report} already exists (use --force to overwrite it)")
        values = True
    with checkpoint.open_checkpoint(a) as ra, checkpoint.open_checkpoint(b) as rb:
        total = ra.total_bytes() if values else 0
        with out.progress("comparing", total) as progress:
            result = compare(ra, rb, values=values, progress=progress)
        if report is not None:
            from modelsurgeon.core.formats.atomic import atomic_output
            from modelsurgeon.core.visual import render_diff_html
            page = render_diff_html(ra, rb, result)
            with atomic_output(report, overwrite=force) as tmp:
                with open(tmp, "w", encoding="utf-8", newline="\n") as handle:
                    handle.write(page)
    if out.json:
        out.emit("diff", {"a": a, "b": b, "equal": result.equal, "compared_by": result.scheme,
                          "only_in_a": result.only_a, "only_in_b": result.only_b, "changed": result.changed,
                          "values": result.values if values else None,
                          **({"report": report} if report is not None else {})})
    else:
        for key in result.only_a:
            out.line(f"- {key}")
        for key in result.only_b:
            out.line(f"+ {key}")
        for change in result.changed:
            out.line(f"~ {change['key']}: {shape_text(change['a']['shape'])} {change['a']['dtype']} -> "
                     f"{shape_text(change['b']['shape'])} {change['b']['dtype']}")
        for item in result.values:
            if not item["equal"]:
                out.line(f"! {item['key']}: max |a-b| = {item['max_abs_diff']:.6g}")
        same = sum(1 for v in result.values if v["equal"])
        out.note(f"compared by {result.scheme}: {len(result.only_a)} only in A, {len(result.only_b)} only in B, "
                 f"{len(result.changed)} changed" + (f", {same} of {len(result.values)} equal in value" if values else ""))
        out.note("same" if result.equal else "different")
        if report is not None:
            out.note(f"wrote {report}")
    return int(ExitCode.OK if result.equal else ExitCode.DIFFERENT)


# -- run ----------------------------------------------------------------------------------------

@cli.command()
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--input", "input_file", type=click.Path(dir_okay=False), help="Input array (.npy).")
@click.option("--random-input", "random_shape", metavar="SHAPE", help="Random input of this shape, e.g. 1,3,224,224.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for --random-input.")
@click.option("--symbol", "symbol_file", type=click.Path(dir_okay=False),
              help="Graph (-symbol.json) for a parameter file that has none beside it.")
@click.option("--top-k", type=click.IntRange(0), default=5, show_default=True, help="Classes to show per example.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the output array here (.npy).")
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@output_options
def run(file: str, input_file: str | None, random_shape: str | None, seed: int, symbol_file: str | None,
        top_k: int, output: str | None, force: bool, out: Output) -> None:
    """Run a forward pass from the checkpoint's architecture or graph.

    The quick way to check that surgery kept a model working: prints the output shape
    and the top-k classes. Without --input or --random-input, a random input of the
    recorded input shape is used.

    \b
    Example:
      modelsurgeon run sample_models/cnn.h5 --random-input 2,3,32,32 --seed 1
    """
    with checkpoint.open_checkpoint(file) as reader:
        if symbol_file is not None:
            reader.graph = checkpoint.read_graph_file(symbol_file).to_dict()
        model = checkpoint.model_from_reader(reader)
        recorded = getattr(model, "_input_specs", None)
    if input_file is not None and random_shape is not None:
        raise click.UsageError("give --input or --random-input, not both")
    if input_file is not None:
        x = _load_npy(input_file)
    else:
        if random_shape is not None:
            shape = parse_shape(random_shape)
        elif recorded:
            shape = tuple(recorded[0][0])
        else:
            raise SurgeryError("the file records no input shape; give --input x.npy or --random-input SHAPE")
        x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    y = model(x)
    outputs = list(y) if isinstance(y, tuple) else [y]
    first = np.asarray(outputs[0])
    top = []
    if top_k and first.ndim == 2:
        k = min(top_k, first.shape[1])
        order = np.argsort(-first, axis=1, kind="stable")[:, :k]
        top = [[{"class": int(c), "score": float(first[row, c])} for c in order[row]] for row in range(first.shape[0])]
    if output is not None:
        from modelsurgeon.core.formats.atomic import atomic_output
        with atomic_output(output, overwrite=force) as tmp:
            with open(tmp, "wb") as handle:
                np.save(handle, first)
    document = {"file": file, "input_shape": list(x.shape),
                "outputs": [{"shape": list(np.shape(o)), "dtype": str(np.asarray(o).dtype)} for o in outputs],
                "top_k": top, "finite": bool(np.isfinite(first).all()), "output_file": output}
    if out.json:
        out.emit("run", document)
        return
    out.line(f"input {shape_text(x.shape)} -> output {', '.join(shape_text(np.shape(o)) for o in outputs)}")
    for row, classes in enumerate(top):
        out.line(f"  [{row}] " + "  ".join(f"{c['class']}: {c['score']:.4g}" for c in classes))
    if not document["finite"]:
        out.note("warning: the output contains NaN or Inf")
    if output is not None:
        out.note(f"wrote {output}")


def _load_npy(path: str) -> np.ndarray:
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        from modelsurgeon.core.errors import InputNotFoundError
        raise InputNotFoundError(path, "no such file") from None
    except (ValueError, OSError) as exc:
        raise ModelSurgeonError(f"{path}: not a .npy array: {exc}") from None
    if not isinstance(array, np.ndarray):
        raise ModelSurgeonError(f"{path}: expected one array (.npy), not an archive")
    return array
