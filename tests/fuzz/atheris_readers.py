"""Coverage-guided fuzzing of the pure-Python readers with atheris (optional; not run by pytest).

    pip install atheris
    python tests/fuzz/atheris_readers.py params -atheris_runs=200000
    python tests/fuzz/atheris_readers.py safetensors -max_total_time=300 tests/fuzz_corpus

Targets: ``params`` (MXNet .params), ``npz``, ``safetensors``, ``graph`` (``-symbol.json`` through
``Graph.from_json``, ``check_ops`` and ``SymbolBlock``) and ``architecture`` (``architecture.build``).
HDF5 is fuzzed by ``tests/test_reliability_fuzz.py`` instead: its crashes happen in C, where a
coverage-guided in-process fuzzer would die with the first one. Any exception other than a
``ModelSurgeonError`` is a finding: atheris stops and writes the input to ``crash-<hash>``; add it to
``tests/fuzz_corpus/`` with a line in its README once fixed.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile

import atheris

with atheris.instrument_imports():
    from modelsurgeon.core.engine import architecture
    from modelsurgeon.core.engine.symbol import Graph
    from modelsurgeon.core.engine.symbol_block import SymbolBlock
    from modelsurgeon.core.errors import ModelSurgeonError
    from modelsurgeon.core.formats.mxnet import MXNetNpzReader, MXNetParamsReader
    from modelsurgeon.core.formats.safetensors_io import SafetensorsReader

SCRATCH = os.path.join(tempfile.mkdtemp(prefix="atheris-"), "input")


def _read_file(reader_class, data: bytes) -> None:
    with open(SCRATCH, "wb") as handle:
        handle.write(data)
    with reader_class(SCRATCH) as reader:
        for key in reader.keys():  # noqa: SIM118 - a reader, not a dict
            reader.read(key)


def _graph(data: bytes) -> None:
    graph = Graph.from_json(data)
    graph.check_ops()
    SymbolBlock(graph, graph.variables()[:1])


def _architecture(data: bytes) -> None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):
        return
    architecture.build(document)


TARGETS = {
    "params": lambda data: _read_file(MXNetParamsReader, data),
    "npz": lambda data: _read_file(MXNetNpzReader, data),
    "safetensors": lambda data: _read_file(SafetensorsReader, data),
    "graph": _graph,
    "architecture": _architecture,
}


def main() -> None:
    name = sys.argv.pop(1) if len(sys.argv) > 1 and sys.argv[1] in TARGETS else "params"
    target = TARGETS[name]

    def one(data: bytes) -> None:
        with contextlib.suppress(ModelSurgeonError):
            target(data)

    atheris.Setup(sys.argv, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
