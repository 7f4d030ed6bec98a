"""``modelsurgeon average``: the weighted mean of several checkpoints (model soups, checkpoint averaging)."""

from __future__ import annotations

import contextlib
import math

import click

from modelsurgeon.core import binding
from modelsurgeon.core.surgery import average as averaging

from ..options import output_options
from ..output import Output
from ..target import Target, finish, write_options


def _weights(ctx: click.Context, param: click.Parameter, text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"takes comma-separated numbers, not {text!r}") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise click.BadParameter(f"takes finite numbers, not {text!r}")
    if sum(values) == 0:
        raise click.BadParameter("the weights sum to zero")
    return values


@click.command("average")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--weights", callback=_weights, metavar="W1,W2,...",
              help="One weight per input (normalised to sum to 1; default: equal weights).")
@click.option("--precision", type=click.Choice(list(averaging.PRECISIONS)), default="float64", show_default=True,
              help="Dtype the mean is computed in (the output keeps the inputs' dtype).")
@write_options
@output_options
def average(files: tuple[str, ...], weights: list[float] | None, precision: str, target: Target,
            out: Output) -> None:
    """Average checkpoints: the weighted mean of every floating tensor.

    Every input must have the same keys, shapes and dtypes (else exit 5, listing every
    difference); inputs may be in different formats. The mean is computed in float64
    (--precision float32 to halve the memory) and written in the inputs' dtype. Integer
    tensors (num_batches_tracked...) are taken from the first input; a note lists those
    that differ. The output keeps the first input's format, documents and sharding.
    Streams: one input tensor and one accumulator in memory at a time.

    \b
    Examples:
      modelsurgeon average ep8.safetensors ep9.safetensors ep10.safetensors -o swa.safetensors
      modelsurgeon average a.pt b.safetensors -o soup.pt --weights 0.7,0.3
    """
    if len(files) < 2:
        raise click.UsageError("give at least two checkpoints to average")
    if weights is not None and len(weights) != len(files):
        raise click.BadParameter(f"gives {len(weights)} weight(s) for {len(files)} inputs", param_hint="'--weights'")
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(binding.open_checkpoint(path)) for path in files]
        plan = averaging.plan_average(readers, weights, precision)
        dest = target.destination(plan, readers[0])
        details = plan.details
        if out.reports:
            shares = ", ".join(f"{w:.4g}" for w in details["weights"])
            out.line(f"averaged {details['averaged']} floating tensor(s) of {len(files)} inputs "
                     f"(weights {shares}, in {precision}); {len(details['taken_from_first'])} taken from the first")
        notes = list(plan.notes)
        if dest is not None and not target.dry_run:
            notes = target.write(out, plan, dest)
    finish(out, "average", dict(details), notes, target)


command = average
