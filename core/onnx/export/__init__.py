"""MXNet-style graphs (:class:`~..engine.symbol.Graph`, a ``-symbol.json``) to ONNX models.

The graph first runs once through our own engine on an input of the given shape (zeros), which
fixes every intermediate shape and dtype exactly as MXNet would have them; each node is then
translated by the converter registered for its operator. Operators whose MXNet attributes need
a concrete shape (``Reshape`` with MXNet's special codes, ``repeat``...) get it from that pass,
and the batch dimension stays dynamic: a second pass at another batch size (run only when such an
operator asks) tells which output dimension follows the batch. Initializers keep the graph's
variable names, or the structural names (``features.0.weight``) where the checkpoint records
them. An operator ONNX cannot express raises :class:`UnsupportedOpError` naming it and its node.

>>> import numpy as np
>>> from modelsurgeon.core.engine import nn
>>> net = nn.Dense(3, in_units=4); _ = net.initialize()
>>> model = export_block(net, (2, 4))
>>> [i.name for i in model.graph.initializer]
['weight', 'bias']
"""

from ...formats.onnx import STRUCTURAL_PROP
from . import activations, arithmetic, detection, numpy_ops, reductions, shapes, structure  # noqa: F401 (converters register)
from .builder import BATCH, DEFAULT_OPSET, converts, exportable_ops
from .exporter import export_block, export_checkpoint, export_file, export_graph, save

__all__ = ["BATCH", "DEFAULT_OPSET", "STRUCTURAL_PROP", "converts", "export_block", "export_checkpoint", "export_file",
           "export_graph", "exportable_ops", "save"]
