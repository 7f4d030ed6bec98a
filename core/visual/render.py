"""A placed picture as a standalone SVG or as one self-contained HTML page.

The page holds everything inline (SVG, CSS, JavaScript, the picture as JSON) and declares a
Content-Security-Policy that forbids every fetch, so it works offline and cannot reach the
network even by accident. Text from the checkpoint (keys, names) is escaped everywhere; in the
embedded JSON ``<``, ``>`` and ``&`` are written as ``\\u003c``... so no key can end the script.
"""

from __future__ import annotations

import html
import json
import re
from itertools import pairwise
from typing import Any

from .assets import PAGE_CSS, PAGE_JS, SVG_CSS
from .picture import STATE_LABELS, Layer, Picture, bytes_text, count_text, label_lines, shape_text, shorten
from .placement import Box, Drawing, layout

SVG_NS = "http://www.w3.org/2000/svg"
FONT = "'Segoe UI', 'Helvetica Neue', Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif"
# characters XML 1.0 cannot hold, even escaped (keys may contain them)
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")

_CATEGORIES = {
    "conv": ("Convolution", "Conv2D", "Deconvolution", "Conv2DTranspose"),
    "dense": ("FullyConnected", "Dense"),
    "norm": ("BatchNorm", "LayerNorm", "InstanceNorm", "GroupNorm"),
    "act": ("Activation", "LeakyReLU", "relu", "sigmoid", "tanh", "softrelu", "softsign", "softmax", "clip"),
    "pool": ("Pooling", "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "GlobalMaxPool2D"),
    "merge": ("elemwise_add", "elemwise_mul", "Concat", "Concatenate", "HybridConcatenate", "add_n"),
    "shape": ("Flatten", "Reshape", "Dropout", "transpose", "_copy", "identity", "Identity"),
}
CATEGORY_OF = {op: category for category, ops in _CATEGORIES.items() for op in ops}


def text(value: Any) -> str:
    """Checkpoint text made safe for XML/HTML: invalid characters shown as ``\\xNN``, then escaped."""
    cleaned = _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100
                           else f"\\u{ord(m.group()):04x}", str(value))
    return html.escape(cleaned, quote=True)


def category(layer: Layer) -> str:
    if layer.kind == "input":
        return "input"
    return CATEGORY_OF.get(layer.op, "other")


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def _tooltip(layer: Layer, key_column: str) -> str:
    lines = [layer.name, layer.op + (f" ({layer.summary})" if layer.summary else "")]
    if layer.shape is not None:
        lines.append(f"output {shape_text(layer.shape)}")
    if layer.tensors:
        lines.append(f"{layer.params:,} parameters; {key_column}, shape, dtype:")
        for row in layer.tensors[:24]:
            state = f" [{row.state}]" if row.state and row.state != "same" else ""
            lines.append(f"  {row.key}  {shape_text(row.shape) or '?'}  {row.dtype}{state}")
        if len(layer.tensors) > 24:
            lines.append(f"  ... and {len(layer.tensors) - 24} more")
    return "\n".join(lines)


def _edge_path(points: list[tuple[float, float]]) -> str:
    """Smooth curve through the points, leaving and entering vertically."""
    (x0, y0) = points[0]
    parts = [f"M{_num(x0)},{_num(y0)}"]
    for (xa, ya), (xb, yb) in pairwise(points):
        if xa == xb:
            parts.append(f"L{_num(xb)},{_num(yb)}")
            continue
        bend = max((yb - ya) / 2, 8)
        parts.append(f"C{_num(xa)},{_num(ya + bend)} {_num(xb)},{_num(yb - bend)} {_num(xb)},{_num(yb)}")
    return " ".join(parts)


def _layer_svg(index: int, layer: Layer, box: Box, treemap: bool, key_column: str, titles: bool,
               cells: list[tuple[str, Box]] | None = None, label: str | None = None) -> str:
    classes = ["layer", f"cat-{category(layer)}"]
    if layer.head:
        classes.append("head")
    if layer.state:
        classes.append(f"state-{layer.state}")
    if layer.ghost:
        classes.append("ghost")
    if layer.kind == "input":
        classes.append("input")
    aria = f"{layer.name}: {layer.op or 'tensors'}" + (" (head)" if layer.head else "")
    out = [(f'<g class="{" ".join(classes)}" id="n{index}" data-index="{index}" data-id="{text(layer.id)}" '
            f'tabindex="0" role="button" aria-label="{text(aria)}">')]
    if titles:
        out.append(f"<title>{text(_tooltip(layer, key_column))}</title>")
    x, y, w, h = box.x, box.y, box.w, box.h
    radius = 15 if layer.kind == "input" else (3 if treemap else 7)
    out.append(f'<rect class="box" x="{_num(x)}" y="{_num(y)}" width="{_num(w)}" height="{_num(h)}" rx="{radius}"/>')
    if treemap:
        out += _treemap_text(layer, box, label or layer.name)
        for key, cell in cells or []:
            out.append(f'<rect class="cell" x="{_num(cell.x)}" y="{_num(cell.y)}" width="{_num(cell.w)}" '
                       f'height="{_num(cell.h)}" rx="2"/>')
            chars = int((cell.w - 6) / 6.2)
            if cell.h >= 16 and chars >= 4:
                out.append(f'<text class="celltext" x="{_num(cell.x + 4)}" y="{_num(cell.y + 12)}">'
                           f'{text(shorten(key.rsplit(".", 1)[-1], chars))}</text>')
    elif layer.kind == "input":
        out.append(f'<text class="t1" x="{_num(x + w / 2)}" y="{_num(y + h / 2 + 4.5)}" text-anchor="middle">'
                   f'{text(label_lines(layer)[0])}</text>')
    else:
        out.append(f'<rect class="accent" x="{_num(x + 5)}" y="{_num(y + 6)}" width="4" '
                   f'height="{_num(h - 12)}" rx="2"/>')
        for number, line in enumerate(label_lines(layer, w)):
            out.append(f'<text class="t{min(number + 1, 3)}" x="{_num(x + 17)}" y="{_num(y + 19 + 15 * number)}">'
                       f"{text(line)}</text>")
        chips = []
        if layer.state and layer.state != "same":
            chips.append(("chip state", STATE_LABELS[layer.state].split(" /")[0]))
        if layer.head:
            chips.append(("chip headchip", "HEAD"))
        right = x + w - 6
        for css, word in chips:
            width = len(word) * 6.4 + 12
            right -= width
            out.append(f'<g class="{css}"><rect x="{_num(right)}" y="{_num(y - 8)}" width="{_num(width)}" height="16" '
                       f'rx="8"/><text x="{_num(right + width / 2)}" y="{_num(y + 4)}" text-anchor="middle">'
                       f"{text(word)}</text></g>")
            right -= 4
    out.append("</g>")
    return "".join(out)


def _treemap_text(layer: Layer, box: Box, label: str) -> list[str]:
    if box.w < 46 or box.h < 18:
        return []
    chars = max(3, int((box.w - 10) / 7.2))
    out = [f'<text class="t1" x="{_num(box.x + 5)}" y="{_num(box.y + 15)}">{text(shorten(label, chars))}</text>']
    if box.h >= 34:
        tensors = f"{len(layer.tensors)} tensor" + ("s" if len(layer.tensors) != 1 else "")
        for detail in (f"{bytes_text(layer.nbytes)} · {count_text(layer.params)} params · {tensors}",
                       f"{bytes_text(layer.nbytes)} · {count_text(layer.params)} params", bytes_text(layer.nbytes)):
            if len(detail) * 6.0 <= box.w - 10:
                out.append(f'<text class="t3" x="{_num(box.x + 5)}" y="{_num(box.y + 29)}">{text(detail)}</text>')
                break
    if layer.head and box.h >= 48 and box.w >= 60:
        out.append(f'<g class="chip headchip"><rect x="{_num(box.x + box.w - 47)}" y="{_num(box.y + 4)}" width="42" '
                   f'height="15" rx="7"/><text x="{_num(box.x + box.w - 26)}" y="{_num(box.y + 15)}" '
                   'text-anchor="middle">HEAD</text></g>')
    return out


def render_svg(picture: Picture, drawing: Drawing | None = None, standalone: bool = True) -> str:
    """The picture as SVG; ``standalone`` adds the XML declaration, styles and hover titles."""
    drawing = drawing or layout(picture)
    treemap = drawing.style == "treemap"
    width, height = _num(drawing.width), _num(drawing.height)
    out = []
    if standalone:
        out.append('<?xml version="1.0" encoding="UTF-8"?>\n')
    out.append(f'<svg xmlns="{SVG_NS}" class="ms-picture {"treemap" if treemap else "graph"}'
               f'{" diff" if picture.diff is not None else ""}" width="{width}" height="{height}" '
               f'viewBox="0 0 {width} {height}" font-family="{html.escape(FONT)}" role="img" '
               f'aria-label="{text(picture.title)}">')
    if standalone:
        out.append(f"<title>{text(picture.title)}</title><style>{SVG_CSS}</style>")
        out.append(f'<rect class="page" width="{width}" height="{height}"/>')
    out.append('<defs><marker id="ms-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
               'orient="auto-start-reverse"><path d="M0,1 L10,5 L0,9 z" class="arrowhead"/></marker></defs>')
    out.append('<g class="frames">')
    for frame in drawing.frames:
        label_ok = frame.w > 40 and frame.h > 30
        out.append(f'<g class="frame {frame.kind} depth{min(frame.depth, 4)}"><rect x="{_num(frame.x)}" '
                   f'y="{_num(frame.y)}" width="{_num(frame.w)}" height="{_num(frame.h)}" rx="4"/>')
        if label_ok:
            chars = max(3, int((frame.w - 8) / 6.6))
            out.append(f'<text x="{_num(frame.x + 5)}" y="{_num(frame.y + 13)}">'
                       f'{text(shorten(frame.label, chars))}</text>')
        out.append("</g>")
    out.append('</g><g class="edges">')
    index_of = {layer.id: i for i, layer in enumerate(picture.layers)}
    for edge in drawing.edges:
        out.append(f'<path class="edge" data-from="n{index_of[edge.source]}" data-to="n{index_of[edge.target]}" '
                   f'd="{_edge_path(edge.points)}" marker-end="url(#ms-arrow)"/>')
    out.append('</g><g class="layers">')
    for i, layer in enumerate(picture.layers):
        box = drawing.boxes.get(layer.id)
        if box is not None:
            out.append(_layer_svg(i, layer, box, treemap, picture.key_column, standalone,
                                  drawing.cells.get(layer.id), drawing.labels.get(layer.id)))
    out.append("</g></svg>\n")
    return "".join(out)


def _json_for_script(document: dict[str, Any]) -> str:
    raw = json.dumps(document, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return raw.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _facts_line(picture: Picture) -> str:
    facts = picture.facts
    parts = []
    if facts.get("format"):
        parts.append(f"{facts['format']}, {facts.get('kind', '')}".rstrip(", "))
    parts.append(f"{facts.get('layers', len(picture.layers))} layers")
    if "parameters" in facts:
        parts.append(f"{facts['parameters']:,} parameters")
    if "bytes" in facts:
        parts.append(bytes_text(int(facts["bytes"])))
    source = {"architecture": "drawn from the embedded architecture", "graph": "drawn from the graph",
              "keys": "drawn from the key tree (box area = bytes)"}[picture.source]
    parts.append(source)
    return " · ".join(parts)


def render_html(picture: Picture, drawing: Drawing | None = None) -> str:
    """One self-contained page: the SVG, a details panel, search and zoom; no network access at all."""
    drawing = drawing or layout(picture)
    svg = render_svg(picture, drawing, standalone=False)
    title = picture.title if picture.diff is None else f"diff: {picture.title}"
    body_class = ("treemap" if drawing.style == "treemap" else "graph") + (" diff" if picture.diff is not None else "")
    summary = _diff_summary(picture) if picture.diff is not None else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{text(title)} - modelsurgeon</title>\n<style>{SVG_CSS}{PAGE_CSS}</style></head>\n"
        f"<body class=\"{body_class}\">\n<header class=\"top\"><div class=\"heading\">"
        f"<h1 title=\"{text(title)}\">{text(title)}</h1><div class=\"facts\">{text(_facts_line(picture))}</div></div>"
        "<div class=\"tools\"><input id=\"search\" type=\"search\" placeholder=\"Find a layer or tensor  ( / )\" "
        "autocomplete=\"off\" spellcheck=\"false\"><span id=\"found\"></span>"
        "<button type=\"button\" data-zoom=\"out\" title=\"Zoom out (-)\">&#8722;</button>"
        "<button type=\"button\" data-zoom=\"fit\" title=\"Fit the whole picture (0)\">Fit</button>"
        "<button type=\"button\" data-zoom=\"one\" title=\"Actual size (1)\">100%</button>"
        "<button type=\"button\" data-zoom=\"in\" title=\"Zoom in (+)\">+</button></div></header>\n"
        f"{summary}<main><div id=\"canvas\" class=\"canvas\" tabindex=\"-1\">{svg}</div>"
        "<aside id=\"panel\" aria-live=\"polite\"></aside></main>\n<div id=\"tip\" role=\"tooltip\" hidden></div>\n"
        f"<script type=\"application/json\" id=\"ms-data\">{_json_for_script(picture.to_dict())}</script>\n"
        f"<script>{PAGE_JS}</script>\n</body></html>\n"
    )


def _diff_summary(picture: Picture) -> str:
    diff = picture.diff or {}
    counts = diff.get("counts", {})
    touched = diff.get("layers_touched", [])
    if diff.get("equal"):
        verdict = "The checkpoints are the same."
    elif touched:
        names = ", ".join(touched[:6]) + (f" and {len(touched) - 6} more" if len(touched) > 6 else "")
        verdict = f"{len(touched)} of {diff.get('layers', 0)} layers touched: {names}."
    else:
        verdict = "The checkpoints differ."
    if not diff.get("values_compared"):
        verdict += " Values were not compared."
    rows = []
    for state in ("added", "removed", "renamed", "reshaped", "changed", "same"):
        rows.append(f"<tr class=\"state-{state}\"><th scope=\"row\"><i></i>{text(STATE_LABELS[state])}</th>"
                    f"<td>{counts.get(state, 0)}</td></tr>")
    return ("<section class=\"summary\"><p class=\"verdict\">" + text(verdict) + "</p>"
            "<table class=\"counts\"><caption>tensors by change</caption><tbody>" + "".join(rows) +
            "</tbody></table></section>\n")


def render_diff_html(reader_a: Any, reader_b: Any, diff_result: Any, input_shape: tuple[int, ...] | None = None,
                     detect_renames: bool = True) -> str:
    """The surgery report: B's picture coloured by change, with the summary table (see :func:`diff_picture`)."""
    from .diff import diff_picture
    return render_html(diff_picture(reader_a, reader_b, diff_result, input_shape, detect_renames))
