"""The graph command: draw a checkpoint's model as a self-contained HTML page or an SVG."""

from __future__ import annotations

import os

import click

from modelsurgeon.core import binding, visual
from modelsurgeon.core.formats.atomic import atomic_output

from ..errors import flags
from ..options import member_option, output_options, reader_options, shape_option
from ..output import Output
from ..target import check_output

PICTURE_FORMATS = {".html": "html", ".htm": "html", ".svg": "svg"}


def picture_format(output: str) -> str:
    """``html`` or ``svg``, from the output's extension."""
    chosen = PICTURE_FORMATS.get(os.path.splitext(output)[1].lower())
    if chosen is None:
        raise click.UsageError(f"cannot tell the picture format of {output!r}: name it OUT.html or OUT.svg")
    return chosen


def layers_of(picture: visual.Picture) -> int:
    return sum(1 for layer in picture.layers if layer.kind != "input")


def _is_graph_file(path: str) -> bool:
    return path.lower().endswith(".json")


@click.command()
@click.argument("file", type=click.Path(dir_okay=True))
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False),
              help="Where to write: OUT.html (interactive page) or OUT.svg (static picture).")
@click.option("--force", is_flag=True, help="Overwrite the output if it exists.")
@click.option("--input-shape", callback=shape_option, metavar="SHAPE",
              help="Input shape for tracing and output shapes, e.g. 1,3,224,224 (default: the recorded one).")
@click.option("--symbol", "symbol_file", type=click.Path(dir_okay=False),
              help="Graph (-symbol.json) for a parameter file that has none beside it.")
@member_option
@output_options
def graph(file: str, output: str, force: bool, input_shape: tuple[int, ...] | None, symbol_file: str | None,
          member: str | None, out: Output) -> None:
    """Draw the model: every layer with its op, output shape and parameter count.

    The picture comes from the embedded architecture (structural files), the graph
    (name-keyed files, MXNet exports, or a -symbol.json on its own), or, for files with
    keys only, the key tree as nested boxes sized by bytes. The head is marked. The HTML
    page is one self-contained file that works offline: click or hover a layer to see
    its tensors, search with /, zoom with +/- or Ctrl+wheel.

    \b
    Examples:
      modelsurgeon graph sample_models/cnn.h5 -o cnn.html
      modelsurgeon graph model-0000.params -o model.svg --input-shape 1,3,224,224
      modelsurgeon graph resnet18_v1-symbol.json -o resnet18.html
    """
    chosen = picture_format(output)
    shape = input_shape
    with out.progress(f"drawing {os.path.basename(file)}", None):  # tracing and layout take a while on big models
        if _is_graph_file(file):
            check_output(output, [file], force)
            picture = visual.picture_from_graph(binding.read_graph_file(file), input_shape=shape, title=file)
        else:
            with binding.open_checkpoint(file, reader_options(member)) as reader:
                check_output(output, [*reader.source_files(), *([symbol_file] if symbol_file else [])], force)
                if symbol_file is not None:
                    reader.graph = binding.read_graph_file(symbol_file).to_dict()
                picture = visual.build_picture(reader, shape)
        drawing = visual.layout(picture)
        content = visual.render_html(picture, drawing) if chosen == "html" else visual.render_svg(picture, drawing)
        with atomic_output(output, overwrite=force) as tmp, open(tmp, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(content)
    layers = layers_of(picture)
    if out.json:
        out.emit("graph", {"file": file, "output": output, "format": chosen, "source": picture.source,
                           "layers": layers, "edges": len(picture.edges), "head": picture.head,
                           "notes": [flags(note) for note in picture.notes], "picture": picture.to_dict()})
        return
    for note in picture.notes:
        out.note(f"note: {flags(note)}")
    source = {"architecture": "the embedded architecture", "graph": "the graph", "keys": "the key tree"}[picture.source]
    out.note(f"wrote {output}: {layers} layers drawn from {source}"
             + (f"; head {picture.head}" if picture.head else ""))


command = graph
