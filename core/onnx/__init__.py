"""ONNX out: export MXNet-style graphs, our architectures and zoo models to ONNX, and run ONNX models
through ONNX Runtime. Reading and editing ``.onnx`` files is the file layer's
(:mod:`modelsurgeon.core.formats.onnx`, :mod:`modelsurgeon.core.formats.onnx_edit`).

Everything here uses the official ``onnx`` package (and ``onnxruntime`` to run), imported on first
use; without them each function raises :class:`MissingExtraError` naming the extra to install
(``pip install 'modelsurgeon[onnx]'``). Submodules: :mod:`.export`, :mod:`.runtime`.
"""

from ..formats.onnx import EXTRA, MissingExtraError, require_onnx, require_onnxruntime

__all__ = ["EXTRA", "MissingExtraError", "require_onnx", "require_onnxruntime"]
