"""The engine: Gluon-style Blocks and Parameters on numpy, the operator kernels, graphs and the model zoo.

Nothing here reads or writes a file: checkpoints reach Blocks through :mod:`modelsurgeon.core.binding`.
"""
