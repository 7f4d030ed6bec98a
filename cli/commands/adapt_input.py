"""``modelsurgeon adapt-input``: change the input channels of the first convolution."""

from __future__ import annotations

import click

from modelsurgeon.core import binding
from modelsurgeon.core.surgery import adapt

from ..errors import flags
from ..options import output_options
from ..output import Output, shape_text
from ..target import Target, finish, write_options


@click.command("adapt-input")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--channels", required=True, type=click.IntRange(min=1), help="The new number of input channels.")
@click.option("--layer", metavar="PATH", help="The convolution to change (default: the first one).")
@write_options
@output_options
def adapt_input(file: str, channels: int, layer: str | None, target: Target, out: Output) -> None:
    """Change the input channels of the first convolution (RGB -> grey, RGB -> 4 bands).

    As timm's adapt_input_conv: to 1 channel the weights are summed over the old input
    channels; to N channels they are repeated and scaled by 3/N (old/N). The convolution
    is --layer, else the first Conv2D of the architecture, else the first Convolution
    of the graph, else the first 4-D weight. The architecture's in_channels and the
    recorded input shape follow, so `run` takes the new input.

    \b
    Examples:
      modelsurgeon adapt-input resnet18.h5 -o resnet18-grey.h5 --channels 1
      modelsurgeon adapt-input model.safetensors -o rgbn.safetensors --channels 4 --layer conv1
    """
    with binding.open_checkpoint(file) as reader:
        plan = adapt.plan_adapt_input(reader, channels, layer)
        dest = target.destination(plan, reader)
        details = plan.details
        details["reason"] = flags(details["reason"])
        if out.reports:
            out.line(f"{details['layer']}: {details['old_channels']} -> {channels} input channels ({details['how']}); "
                     f"chosen as {details['reason']}")
            out.line(f"  {details['weight']}: {shape_text(details['old_shape'])} -> {shape_text(details['new_shape'])}")
        notes = list(plan.notes)
        if dest is not None and not target.dry_run:
            notes = target.write(out, plan, dest)
    finish(out, "adapt-input", {"input": file, **details}, notes, target)


command = adapt_input
