"""The reliability checks of the library, as the command line shows them: a forward pass refused from
its shapes (``run --max-memory``), a lying ``--input`` array, and the notes of a reader."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
from cli_helpers import error_line, invoke

from modelsurgeon.cli.errors import ExitCode
from modelsurgeon.core.formats.base import TensorInfo
from modelsurgeon.core.formats.safetensors_io import ST_GRAPH, ST_KIND, write_safetensors

CNN = Path(__file__).resolve().parent.parent / "sample_models" / "cnn.h5"


def test_run_refuses_a_forward_pass_over_the_memory_budget(tmp_path):
    sample = CNN
    result = invoke("run", sample, "--random-input", "64,3,32,32", "--max-memory", "1MB", code=ExitCode.BAD_CHECKPOINT)
    message = error_line(result)
    assert "memory budget" in message and "--max-memory" in message and "cnn.h5" in message
    invoke("run", sample, "--random-input", "2,3,32,32", "--max-memory", "64MB")  # small passes still run
    bad = invoke("run", sample, "--max-memory", "lots", code=ExitCode.USAGE)
    assert "--max-memory" in bad.stderr


def test_run_input_whose_header_lies_is_a_usage_error(tmp_path):
    path = tmp_path / "x.npy"
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (100000, 3, 1000, 1000), }"
    header += b" " * (118 - len(header)) + b"\n"
    path.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\0" * 16)
    result = invoke("run", CNN, "--input", path, code=ExitCode.USAGE)
    assert "--input" in result.stderr and "x.npy" in result.stderr and "Traceback" not in result.stderr


def test_inspect_shows_what_the_reader_set_aside(tmp_path):
    path = tmp_path / "odd.safetensors"
    write_safetensors(str(path), [TensorInfo("w", (2,), np.dtype("float32"))], lambda i: np.ones(2, np.float32),
                      metadata={ST_GRAPH: json.dumps({"not": "a graph"}), ST_KIND: "named"})
    result = invoke("inspect", path)
    assert result.stdout.splitlines()[1].startswith("w\t")
    assert any(line.startswith("note: the embedded graph is not a usable graph") for line in result.stderr.splitlines())
    document = json.loads(invoke("inspect", path, "--json").stdout)
    assert len(document["notes"]) == 1
