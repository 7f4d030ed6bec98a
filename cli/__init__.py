"""The modelsurgeon command line: a thin click adapter over :mod:`modelsurgeon.core`."""
