"""``modelsurgeon replace-head``: a new classification head with --classes outputs."""

from __future__ import annotations

import click

from modelsurgeon.core import binding, surgery

from ..errors import flags
from ..options import member_option, output_options, reader_options
from ..output import Output, shape_text
from ..target import Target, finish, write_options


def _parse_classes(ctx: click.Context, param: click.Parameter, text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        kept = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"takes comma-separated integers, not {text!r}") from None
    if not kept:
        raise click.BadParameter("give at least one class number, like 3,7,9")
    if any(i < 0 for i in kept):
        raise click.BadParameter(f"{min(kept)!r} out of range: class numbers start at 0")
    if len(set(kept)) != len(kept):
        raise click.BadParameter("lists a class twice")
    return kept


_parse_classes.bad_example = "3,x"  # type: ignore[attr-defined]


@click.command("replace-head")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--classes", type=click.IntRange(min=1), help="Number of outputs of the new head.")
@click.option("--head", metavar="PATH", help="Block path of the head (default: 'output', else the last dense layer).")
@click.option("--init", "init", type=click.Choice(list(surgery.HEAD_INITS)), default="xavier", show_default=True,
              help="How to initialise the new head: " + "; ".join(f"{k}: {v}" for k, v in surgery.HEAD_INITS.items()))
@click.option("--seed", type=click.IntRange(min=0), help="Seed for the initialisation (reproducible output).")
@click.option("--keep-classes", callback=_parse_classes, metavar="I,J,...",
              help="Copy these rows of the old head, in this order, to the first rows.")
@click.option("--ignore-consumers", is_flag=True,
              help="Replace the named layer even though later tensors (in a file without architecture or graph) "
                   "take its outputs.")
@write_options
@member_option
@output_options
def replace_head(file: str, classes: int | None, head: str | None, init: str, seed: int | None,
                 keep_classes: list[int] | None, ignore_consumers: bool, target: Target, member: str | None,
                 out: Output) -> None:
    """Replace the classification head with one of --classes outputs.

    Finds the head (--head; else the zoo's 'output'; else the last dense layer) and
    replaces it in kind: a dense head by a dense layer, a convolution head (such as
    SqueezeNet's output.0) by a convolution, with the same input size. Every other
    tensor is copied bit for bit; the architecture and graph are updated to match.

    \b
    Examples:
      modelsurgeon replace-head sample_models/cnn.h5 -o cnn10.h5 --classes 10 --seed 0
      modelsurgeon replace-head alexnet.h5 -o a3.h5 --keep-classes 3,7,9 --init torch
    """
    if classes is None and keep_classes is None:
        raise click.UsageError("give --classes N (or --keep-classes I,J,... to keep some of the old classes)")
    if classes is not None and keep_classes is not None and len(keep_classes) > classes:
        raise click.BadParameter(f"lists {len(keep_classes)} classes but --classes is {classes}",
                                 param_hint="'--keep-classes'")
    with binding.open_checkpoint(file, reader_options(member)) as reader:
        plan = surgery.plan_replace_head(reader, classes, head=head, init=init, seed=seed, keep_classes=keep_classes,
                                         ignore_consumers=ignore_consumers)
        dest = target.destination(plan, reader)
        details = plan.details
        details["head"]["reason"] = flags(details["head"]["reason"])
        if out.reports:
            h = details["head"]
            out.line(f"head: {h['path']} ({h['kind']}), {details['old_classes']} -> {details['classes']} classes; "
                     f"chosen as {h['reason']}")
            for item in details["resized"]:
                out.line(f"  {item['key']}: {shape_text(item['old_shape'])} -> "
                         f"{shape_text(item['new_shape'])} ({init})")
        notes = list(plan.notes)
        if dest is not None and not target.dry_run:
            notes = target.write(out, plan, dest)
    document = {"input": file, **{k: v for k, v in details.items() if k != "resized"}}
    finish(out, "replace-head", document, notes, target)


command = replace_head
