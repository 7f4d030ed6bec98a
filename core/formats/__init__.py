"""Checkpoint file formats: our HDF5 layout and the foreign formats we read and write."""
