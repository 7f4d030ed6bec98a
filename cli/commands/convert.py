"""``modelsurgeon convert``: between key schemes (structural <-> named) and file formats."""

from __future__ import annotations

from typing import Any

import click

from modelsurgeon.core import binding, surgery
from modelsurgeon.core.errors import ModelSurgeonError
from modelsurgeon.core.formats import registry
from modelsurgeon.core.formats.base import NAMED, STRUCTURAL, CheckpointReader
from modelsurgeon.core.surgery import cast

from ..options import member_option, output_options, reader_options, regex_list, shape_option, zoo_name_option
from ..output import Output, human_bytes
from ..target import Target, finish, write_options


@click.command()
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--to", "to", type=click.Choice([STRUCTURAL, NAMED]),
              help="Key scheme of the output (default: the input's).")
@click.option("--model", "model_name", metavar="ZOO_NAME", callback=zoo_name_option,
              help="Zoo model to trace (structural -> named without an architecture) or to align a graph with.")
@click.option("--input-shape", callback=shape_option, metavar="SHAPE",
              help="Input shape for tracing, e.g. 1,3,224,224.")
@click.option("--dtype", type=click.Choice(list(cast.DTYPES)),
              help="Cast floating tensors to this dtype (rounding as PyTorch's .to(dtype)).")
@click.option("--keep-dtype", "keep_dtype", multiple=True, metavar="REGEX", callback=regex_list,
              help="Leave tensors whose key matches REGEX in their dtype (repeatable; e.g. 'running_|norm').")
@write_options
@member_option
@output_options
def convert(file: str, to: str | None, model_name: str | None, input_shape: tuple[int, ...] | None,
            dtype: str | None, keep_dtype: tuple[str, ...], target: Target, member: str | None, out: Output) -> None:
    """Convert between key schemes (structural <-> named) and file formats.

    Structural -> named traces the model (embedded architecture, or --model) and keys
    each tensor by its unique name. Named -> structural uses the recorded structural
    names, or aligns the graph with --model's traced graph by operator order, type and
    shape, reporting any ambiguity instead of guessing. Streams tensor by tensor.

    \b
    Examples:
      modelsurgeon convert sample_models/cnn.h5 -o cnn-named.h5 --to named
      modelsurgeon convert resnet18_v1-0000.params -o r18.h5 --to structural --model resnet18_v1
      modelsurgeon convert sample_models/cnn.h5 -o cnn.safetensors
      modelsurgeon convert model.safetensors -o model-bf16.safetensors --dtype bfloat16 --keep-dtype 'norm|running_'
    """
    if keep_dtype and dtype is None:
        raise click.UsageError("--keep-dtype needs --dtype")
    with binding.open_checkpoint(file, reader_options(member)) as reader:
        model = _zoo_model(model_name, reader) if model_name else None
        plan = surgery.plan_convert(reader, to, model, input_shape)
        if dtype is not None:
            plan = cast.cast_plan(plan, dtype, keep_dtype)
        dest = target.destination(plan, reader)
        written_format = dest.format if dest is not None else registry.format_of(reader)
        if written_format is not None and written_format.write is not None:
            cast.check_storable(plan, written_format)
        if out.reports and plan.documents.kind != reader.kind:
            out.table(["from", "to"], [(m["from"], m["to"]) for m in plan.details["mapping"]])
        if out.reports and dtype is not None:
            done = plan.details["cast"]
            out.line(f"cast {len(done['tensors'])} tensor(s) to {dtype}, kept {len(done['kept'])}, "
                     f"{done['not_floating']} not floating; {human_bytes(done['bytes_before'])} -> "
                     f"{human_bytes(done['bytes_after'])} (saved {human_bytes(done['bytes_saved'])})")
        notes = list(plan.notes)
        if dest is not None and not target.dry_run:
            notes = target.write(out, plan, dest, input_shape=input_shape)
    document = {"input": file, "from": plan.details["from"],
                "to": {"format": dest.format.name if dest is not None else None, "kind": plan.documents.kind},
                "tensors": len(plan.tensors), "mapping": plan.details["mapping"]}
    if dtype is not None:
        document["cast"] = plan.details["cast"]
    finish(out, "convert", document, notes, target)


def _zoo_model(name: str, reader: CheckpointReader) -> Any:
    from modelsurgeon.core.engine.model_zoo import vision
    try:  # the zoo model gets as many classes as the file's head has
        classes = reader.tensors[surgery.find_head(reader).weight].shape[0]
    except ModelSurgeonError:
        classes = 1000
    return vision.get_model(name, classes=classes)


command = convert
