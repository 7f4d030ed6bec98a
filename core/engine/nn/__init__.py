"""Layers, as ``gluon.nn``: containers, Dense, Conv2D, pooling, BatchNorm and friends."""

from .basic_layers import (
                           Activation,
                           BatchNorm,
                           Concatenate,
                           Dense,
                           Dropout,
                           Flatten,
                           HybridConcatenate,
                           HybridConcurrent,
                           Identity,
)
from .containers import HybridSequential, Sequential
from .conv_layers import AvgPool2D, Conv2D, GlobalAvgPool2D, GlobalMaxPool2D, MaxPool2D

__all__ = ["Activation", "AvgPool2D", "BatchNorm", "Concatenate", "Conv2D", "Dense", "Dropout", "Flatten",
           "GlobalAvgPool2D", "GlobalMaxPool2D", "HybridConcatenate", "HybridConcurrent", "HybridSequential",
           "Identity", "MaxPool2D", "Sequential"]
