"""``modelsurgeon diff``: compare two checkpoints (keys, shapes, dtypes, values, renames)."""

from __future__ import annotations

import click

from modelsurgeon.core import binding

from ..errors import ExitCode
from ..options import member_option, output_options, reader_options
from ..output import Output, shape_text
from ..target import check_output


@click.command()
@click.argument("a", type=click.Path(dir_okay=True))
@click.argument("b", type=click.Path(dir_okay=True))
@click.option("--values", is_flag=True, help="Also compare values: the largest absolute difference per tensor.")
@click.option("--html", "report", type=click.Path(dir_okay=False), metavar="REPORT.html",
              help="Also write a visual report: B's model with added, removed, renamed, reshaped and "
                   "value-changed tensors coloured (implies --values).")
@click.option("--force", is_flag=True, help="Overwrite the --html report if it exists.")
@member_option
@output_options
def diff(a: str, b: str, values: bool, report: str | None, force: bool, member: str | None, out: Output) -> int:
    """Compare two checkpoints: keys only in A or B, shape/dtype changes, and (--values) values.

    Works across the two key schemes when a name-keyed file records structural names.
    Exits 0 when the checkpoints are the same, 1 when they differ (like diff(1)).

    \b
    Examples:
      modelsurgeon diff sample_models/cnn.h5 cnn10.h5 --values
      modelsurgeon diff sample_models/cnn.h5 cnn10.h5 --html report.html
    """
    from modelsurgeon.core.surgery.diff import diff as compare
    options = _member_for(a, b, member)
    with binding.open_checkpoint(a, options[0]) as ra, binding.open_checkpoint(b, options[1]) as rb:
        if report is not None:
            check_output(report, [*ra.source_files(), *rb.source_files()], force)
            values = True
        total = ra.total_bytes() + rb.total_bytes() if values else 0  # the bytes both files give to compare
        with out.progress("comparing", total) as progress:
            result = compare(ra, rb, values=values, progress=progress, renames=values)
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
                          "renamed": [{"a": old, "b": new} for old, new in result.renames],
                          "values": result.values if values else None,
                          **({"report": report} if report is not None else {})})
    else:
        moved_a = {old for old, _ in result.renames}
        moved_b = {new for _, new in result.renames}
        for key in result.only_a:
            if key not in moved_a:
                out.line(f"- {key}")
        for key in result.only_b:
            if key not in moved_b:
                out.line(f"+ {key}")
        for old, new in result.renames:
            out.line(f"> {old} -> {new}")
        for change in result.changed:
            out.line(f"~ {change['key']}: {shape_text(change['a']['shape'])} {change['a']['dtype']} -> "
                     f"{shape_text(change['b']['shape'])} {change['b']['dtype']}")
        for item in result.values:
            if not item["equal"]:
                out.line(f"! {item['key']}: max |a-b| = {item['max_abs_diff']:.6g}")
        same = sum(1 for v in result.values if v["equal"])
        out.note(f"compared by {result.scheme}: {len(result.only_a)} only in A, {len(result.only_b)} only in B, "
                 f"{len(result.changed)} changed"
                 + (f", {same} of {len(result.values)} equal in value" if values else ""))
        out.note("same" if result.equal else "different")
        if report is not None:
            out.note(f"wrote {report}")
    return int(ExitCode.OK if result.equal else ExitCode.DIFFERENT)


def _member_for(a: str, b: str, member: str | None) -> tuple[dict | None, dict | None]:
    """--member goes to whichever of A and B is a PyTorch file (to A when neither is: its reader says why)."""
    if member is None:
        return None, None
    from modelsurgeon.core.formats import registry
    torch = [_is_torch(registry, path) for path in (a, b)]
    if not any(torch):
        return reader_options(member), None
    return tuple(reader_options(member) if t else None for t in torch)  # type: ignore[return-value]


def _is_torch(registry, path: str) -> bool:
    try:
        return registry.detect(path).name == "torch"
    except Exception:
        return False


command = diff
