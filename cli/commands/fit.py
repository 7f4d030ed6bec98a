"""``modelsurgeon fit``: make a checkpoint load strictly into a target model (keys, shapes, dtypes)."""

from __future__ import annotations

import contextlib
import os

import click

from modelsurgeon.core import binding
from modelsurgeon.core.surgery import fit as fitting

from ..options import output_options
from ..output import Output, shape_text
from ..target import Target, finish, write_options


@click.command("fit")
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--to", "to", required=True, metavar="TARGET",
              help="What to fit: a checkpoint (its keys, shapes, dtypes), a zoo model name, or a JSON list of "
                   "[key, shape] pairs (inline or a .json file).")
@click.option("--cast", is_flag=True, help="Cast tensors to the target's dtypes.")
@write_options
@output_options
def fit(file: str, to: str, cast: bool, target: Target, out: Output) -> None:
    """Make FILE load strictly into the model TARGET describes.

    Unwraps checkpoint dictionaries (state_dict, model, module...), strips or adds
    wrapper prefixes (module., _orig_mod., model., backbone.), renames Gluon's
    gamma/beta/running_mean/running_var to the target's names, aligns what is left by
    order, role and shape (a convolution with its BatchNorm at a time), and adds
    buffers with a defined value (num_batches_tracked = 0). Prints the whole mapping
    (old -> new, with the rule that made it). Writes nothing when a target tensor stays
    unmatched or a shape differs (exit 5), naming the command that would fix it
    (replace-head, resize-embedding, adapt-input).

    \b
    Examples:
      modelsurgeon fit resnet18_v1-0000.params --to torchvision-r18.pt -o r18.pt
      modelsurgeon fit ckpt.pt --to '[["weight", [10, 4]], ["bias", [10]]]' -o fitted.pt
      modelsurgeon fit model.safetensors --to resnet18_v1 -o r18.h5 --dry-run
    """
    if not (to.strip().startswith(("[", "{")) or os.path.exists(to) or to.lower() in fitting.zoo_names()):
        raise click.BadParameter(f"{to!r} is not a file, a JSON list of [key, shape] pairs, or a zoo model "
                                 f"({', '.join(fitting.zoo_names())})", param_hint="'--to'")
    with contextlib.ExitStack() as stack:
        reader = stack.enter_context(binding.open_checkpoint(file))
        goal, goal_reader = fitting.resolve_target(to, reader)
        if goal_reader is not None:
            stack.enter_context(goal_reader)
        mapping = fitting.fit_mapping(reader, goal)
        if out.reports:
            rows = []
            for row in mapping.rows:
                rule = row["rule"]
                if "old_shape" in row:
                    rule += f"; shape {shape_text(row['old_shape'])} vs {shape_text(row['shape'])}"
                if "dtype" in row:
                    rule += f"; dtype {row['old_dtype']} -> {row['dtype']}" if cast else f"; dtype {row['old_dtype']}"
                rows.append((row["old"] or "-", row["new"], rule))
            rows += [(key, "-", "left out") for key in mapping.unused]
            out.table(["old", "new", "rule"], rows)
        plan = fitting.plan_fit(reader, goal, cast=cast, fitting=mapping)
        dest = target.destination(plan, reader)
        notes = list(plan.notes)
        if dest is not None and not target.dry_run:
            notes = target.write(out, plan, dest)
    finish(out, "fit", {"input": file, **plan.details}, notes, target)


command = fit
