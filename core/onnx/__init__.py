"""ONNX out and in: export MXNet-style graphs to ONNX, read ``.onnx`` files as checkpoints, edit them
(rename initializers, replace the head) and run them through ONNX Runtime.

Everything here uses the official ``onnx`` package (and ``onnxruntime`` to run), imported on first
use; without them each function raises :class:`MissingExtraError` naming the extra to install
(``pip install 'modelsurgeon[onnx]'``). Submodules: :mod:`.export`, :mod:`.reader`, :mod:`.edit`,
:mod:`.runtime`.
"""

from __future__ import annotations

from types import ModuleType

from ..errors import MissingDependencyError

EXTRA = "pip install 'modelsurgeon[onnx]'"


class MissingExtraError(MissingDependencyError):
    """The onnx extra (onnx, onnxruntime) is not installed."""


def require_onnx() -> ModuleType:
    """The ``onnx`` module, or a MissingExtraError naming the extra that installs it."""
    try:
        import onnx
    except ImportError:
        raise MissingExtraError(f"ONNX support needs the 'onnx' package: {EXTRA}") from None
    return onnx


def require_onnxruntime() -> ModuleType:
    """The ``onnxruntime`` module, or a MissingExtraError naming the extra that installs it."""
    try:
        import onnxruntime
    except ImportError:
        raise MissingExtraError(f"running ONNX models needs the 'onnxruntime' package: {EXTRA}") from None
    return onnxruntime


__all__ = ["EXTRA", "MissingExtraError", "require_onnx", "require_onnxruntime"]
