"""``modelsurgeon zoo``: a randomly initialised model-zoo checkpoint, with its architecture."""

from __future__ import annotations

import click
import numpy as np

from modelsurgeon.core import binding, surgery
from modelsurgeon.core.formats.base import STRUCTURAL

from ..options import output_options, zoo_name_option
from ..output import Output
from ..target import Target, finish, write_options


@click.command()
@click.argument("name", required=False, callback=zoo_name_option)
@click.option("--classes", type=click.IntRange(1), default=1000, show_default=True, help="Number of output classes.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed for the random initialisation.")
@click.option("--list", "list_models", is_flag=True, help="List the model names.")
@write_options
@output_options
def zoo(name: str | None, classes: int, seed: int, list_models: bool, target: Target, out: Output) -> None:
    """Write a randomly initialised model-zoo checkpoint (with its architecture).

    \b
    Examples:
      modelsurgeon zoo --list
      modelsurgeon zoo resnet18_v1 -o resnet18.h5 --classes 10 --seed 0
    """
    from modelsurgeon.core.engine import architecture, initializer, random
    from modelsurgeon.core.engine.model_zoo import vision
    if list_models or name is None:
        if name is None and not list_models:
            raise click.UsageError("give a model NAME (see --list)")
        if out.json:
            out.emit("zoo", {"models": vision.model_names()})
        else:
            for model_name in vision.model_names():
                out.line(model_name)
        return
    target.check_before_work()
    with out.progress(f"building {name}", None):  # one bar: building, then (the same bar) writing
        net = vision.get_model(name, classes=classes)
        random.seed(seed)
        net.initialize(initializer.Xavier())
        net(np.zeros((1, *vision.INPUT_SHAPE), np.float32))
        infos, params = binding.parameter_infos(net)
        plan = surgery.Plan.of([(info, surgery.New(params[info.alias_of or info.key].data())) for info in infos],
                               STRUCTURAL, architecture=architecture.describe(net),
                               metadata={"modelsurgeon.zoo": f"{name} classes={classes} seed={seed}"})
        dest = target.destination(plan, default="h5")
        notes: list[str] = []
        if dest is not None and not target.dry_run:
            notes = target.write(out, plan, dest)
    finish(out, "zoo", {"model": name, "classes": classes, "seed": seed, "tensors": len(infos),
                        "parameters": sum(i.size for i in infos if i.alias_of is None)}, notes, target)


command = zoo
