"""modelsurgeon's engine: Gluon-style Blocks and Parameters on numpy, and checkpoint I/O.

Written so that the Gluon "Parameter and Block Naming" tutorial runs with ``mx.nd`` replaced
by numpy::

    from modelsurgeon import core as gluon
    net = gluon.model_zoo.vision.alexnet(classes=1000)
    net.output = gluon.nn.Dense(100)
"""

from __future__ import annotations

from . import initializer, model_zoo, nd, nn, random
from . import initializer as init
from .block import Block, HybridBlock
from .errors import (CheckpointError, DeferredInitializationError, MismatchError, ModelSurgeonError,
                     NotInitializedError, ShapeError, SurgeryError, UnsupportedOpError)
from .naming import name_scope, reset_names
from .parameter import Constant, Parameter
from .symbol_block import SymbolBlock

__version__ = "0.1.0"

__all__ = ["Block", "CheckpointError", "Constant", "DeferredInitializationError", "HybridBlock",
           "MismatchError", "ModelSurgeonError", "NotInitializedError", "Parameter", "ShapeError",
           "SurgeryError", "SymbolBlock", "UnsupportedOpError", "__version__", "init", "initializer",
           "model_zoo", "name_scope", "nd", "nn", "random", "reset_names"]
