"""Pictures of models: what a checkpoint's layers are, how data flows, and what a surgery changed.

Pure functions, in three steps that each have their own module:

* :mod:`.picture` is the data (a :class:`Picture`: layers with their tensors, edges, the head);
  :mod:`.sources` builds one from a checkpoint reader: the embedded architecture (structural
  files, traced without weights), the graph (name-keyed files, MXNet exports), or the key tree for
  files with keys only; :mod:`.diff` colours a picture with what
  :func:`~modelsurgeon.core.surgery.diff` found.
* :mod:`.placement` places it: a small layered (Sugiyama-style) layout for graphs, a squarified
  treemap (box area by bytes) for key trees.
* :mod:`.render` turns a placed picture into a standalone SVG or a self-contained HTML page
  (inline SVG, CSS and JavaScript; nothing is loaded from the network).

>>> from modelsurgeon.core import binding
>>> with binding.open_checkpoint("sample_models/cnn.h5") as reader:  # doctest: +SKIP
...     html = render_html(build_picture(reader))
"""

from __future__ import annotations

from .diff import diff_picture
from .picture import DIFF_STATES, Layer, Picture, TensorRow
from .placement import Box, Drawing, Frame, layout
from .render import render_diff_html, render_html, render_svg
from .sources import build_picture, picture_from_graph
from .stats import histogram, sparkline

__all__ = ["DIFF_STATES", "Box", "Drawing", "Frame", "Layer", "Picture", "TensorRow", "build_picture",
           "diff_picture", "histogram", "layout", "picture_from_graph", "render_diff_html",
           "render_html", "render_svg", "sparkline"]
