"""``modelsurgeon run``: a forward pass from the checkpoint's architecture or graph."""

from __future__ import annotations

import click
import numpy as np

from modelsurgeon.core import binding
from modelsurgeon.core.engine.budget import check_forward
from modelsurgeon.core.errors import (
    CheckpointError,
    InputNotFoundError,
    ModelSurgeonError,
    ResourceLimitError,
    SurgeryError,
)
from modelsurgeon.core.formats.npyfile import read_npy

from ..options import member_option, output_options, reader_options, shape_option
from ..output import Output, shape_text
from ..target import check_output, parse_size


def _memory(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    return None if value is None else parse_size(value)


@click.command()
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("--input", "input_file", type=click.Path(dir_okay=False), help="Input array (.npy).")
@click.option("--random-input", "random_shape", callback=shape_option, metavar="SHAPE",
              help="Random input of this shape, e.g. 1,3,224,224.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Seed for --random-input.")
@click.option("--symbol", "symbol_file", type=click.Path(dir_okay=False),
              help="Graph (-symbol.json) for a parameter file that has none beside it.")
@click.option("--top-k", type=click.IntRange(0), default=5, show_default=True, help="Classes to show per example.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the output array here (.npy).")
@click.option("--force", is_flag=True, help="Overwrite --output if it exists.")
@click.option("--max-memory", callback=_memory, metavar="SIZE",
              help="Refuse a forward pass whose activations would need more than SIZE (e.g. 4GB; default: "
                   "half of this machine's memory), computed from the shapes before running.")
@click.option("--engine", type=click.Choice(["numpy", "onnxruntime"]), default="numpy", show_default=True,
              help="Run on modelsurgeon's numpy engine, or through ONNX Runtime (an .onnx file, or any model "
                   "exported to ONNX in memory first): the quick way to compare the two.")
@member_option
@output_options
def run(file: str, input_file: str | None, random_shape: tuple[int, ...] | None, seed: int, symbol_file: str | None,
        top_k: int, output: str | None, force: bool, max_memory: int | None, engine: str,
        member: str | None, out: Output) -> None:
    """Run a forward pass from the checkpoint's architecture or graph.

    The quick way to check that surgery kept a model working: prints the output shape
    and the top-k classes. Without --input or --random-input, a random input of the
    recorded input shape is used.

    \b
    Example:
      modelsurgeon run sample_models/cnn.h5 --random-input 2,3,32,32 --seed 1
    """
    if input_file is not None and random_shape is not None:
        raise click.UsageError("give --input or --random-input, not both")
    if engine == "onnxruntime":
        outputs = _run_onnxruntime(file, input_file, random_shape, seed, output, force, member, out)
        x = outputs.pop(0)
        _report(out, file, x, outputs, top_k, output, force)
        return
    with out.progress("opening", None):  # one spinner: loading the weights, then running
        with binding.open_checkpoint(file, reader_options(member)) as reader:
            if output is not None:
                check_output(output, [*reader.source_files(), *([symbol_file] if symbol_file else []),
                                      *([input_file] if input_file else [])], force)
            if symbol_file is not None:
                reader.graph = binding.read_graph_file(symbol_file).to_dict()
            if reader.format == "onnx":
                raise SurgeryError(f"{file} is an ONNX model: the numpy engine runs MXNet graphs and our "
                                   "architectures; run it with --engine onnxruntime")
            with out.progress(f"loading {len(reader.tensors)} tensors", None):
                model = binding.model_from_reader(reader)
            recorded = getattr(model, "_input_specs", None)
        if input_file is not None:
            x = _load_npy(input_file)
        else:
            if random_shape is not None:
                shape = random_shape
            elif recorded:
                shape = tuple(recorded[0][0])
            else:
                raise SurgeryError("the file records no input shape; give --input x.npy or --random-input SHAPE")
            x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
        try:  # refused from the shapes alone; a model the estimate cannot follow still runs below
            check_forward(model, tuple(x.shape), x.dtype, max_memory=max_memory, source=file)
        except ResourceLimitError:
            raise
        except ModelSurgeonError:
            pass
        with out.progress("running", None):
            y = model(x)
    _report(out, file, x, list(y) if isinstance(y, tuple) else [y], top_k, output, force)


def _run_onnxruntime(file: str, input_file: str | None, random_shape: tuple[int, ...] | None, seed: int,
                     output: str | None, force: bool, member: str | None, out: Output) -> list[np.ndarray]:
    """[input, outputs...] of a pass through ONNX Runtime (the model exported to ONNX first if it is not)."""
    from modelsurgeon.core.formats.onnx import is_onnx
    from modelsurgeon.core.onnx import runtime
    if output is not None:
        check_output(output, [file, *([input_file] if input_file else [])], force)
    if input_file is not None:
        x = _load_npy(input_file)
    else:
        shape = random_shape
        if shape is None and is_onnx(file):
            dims = runtime.input_specs(file)[0].shape
            shape = tuple(d if isinstance(d, int) and d > 0 else 1 for d in dims)
        elif shape is None:
            with binding.open_checkpoint(file, reader_options(member)) as reader:
                recorded = getattr(binding.model_from_reader(reader), "_input_specs", None)
            if not recorded:
                raise SurgeryError("the file records no input shape; give --input x.npy or --random-input SHAPE")
            shape = tuple(recorded[0][0])
        x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    with out.progress("running in ONNX Runtime", None):
        return [x, *runtime.run_file(file, [x])]


def _report(out: Output, file: str, x: np.ndarray, outputs: list, top_k: int, output: str | None, force: bool) -> None:
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
    """The ``--input`` array, read safely (a header claiming more than the file holds, objects, a FIFO
    are refused before anything is allocated); a bad file is a usage error naming the option."""
    try:
        return read_npy(path)
    except InputNotFoundError:
        raise
    except CheckpointError as exc:
        raise click.BadParameter(str(exc), param_hint="'--input'") from None



command = run
