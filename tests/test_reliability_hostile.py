"""Promises 2 and 3 of docs/reliability.md: hostile files are refused, and nothing runs from a file.

Hostile HDF5 (tests/test_checkpoint_h5.py already covers each trick on our own format through the
library): here every trick is applied to our files *and* to Keras files (Keras 3 ``.weights.h5``
and legacy ``.h5``), and checked end to end through the command line: ``inspect`` and ``convert``
exit with code 4 and one clear line, write nothing, and leave the input untouched.

Nothing runs from a file: crafted architecture documents, graphs, ``.npz`` members, Keras model
configs and PyTorch files are opened, inspected, converted and run while every way of importing
or calling by name is watched; none may be used.
"""

from __future__ import annotations

import builtins
import contextlib
import importlib
import json
import os
import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from cli_helpers import SAMPLES, digest, error_line, invoke

from modelsurgeon.cli.errors import ExitCode
from modelsurgeon.core.binding import (
    model_from_reader,
    open_checkpoint,
    read_graph_file,
)
from modelsurgeon.core.engine import architecture as arch
from modelsurgeon.core.engine.symbol import Graph
from modelsurgeon.core.errors import CheckpointError, ModelSurgeonError
from modelsurgeon.core.formats import h5, h5safe, isolate

PEERS = Path(__file__).resolve().parent / "fixtures" / "peers"
BIG_ATTRIBUTE = np.zeros((h5safe.ATTR_LIMIT // 4) + 1024, np.float32)


# -- hostile HDF5, ours and Keras's ---------------------------------------------------------------

def _ours_soft_link(f):
    f["tensors"]["alias"] = h5py.SoftLink("/tensors/output.bias")


def _ours_external_link(f):
    f["tensors"]["ext"] = h5py.ExternalLink("/etc/passwd", "/data")


def _ours_external_dataset(f):
    f["tensors"].create_dataset("ext", shape=(4,), dtype="f4", external=[("/etc/hostname", 0, 16)])


def _virtual(group, name, directory):
    source = os.path.join(directory, "source.h5")
    with h5py.File(source, "w") as other:
        other.create_dataset("data", data=np.arange(4, dtype=np.float32))
    layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
    layout[:] = h5py.VirtualSource(source, "data", shape=(4,))
    group.create_virtual_dataset(name, layout)


def _ours_shape_bomb(f):
    f["tensors"].create_dataset("bomb", shape=(10 ** 6, 10 ** 6), dtype="f4", chunks=(1000, 1000))


def _ours_big_attribute(f):
    f["tensors"].create_dataset("extra.weight", data=np.zeros(2, np.float32)).attrs.create("role", BIG_ATTRIBUTE)


def _ours_control_name(f):
    f["tensors"]["evil\x1b[2J.weight"] = np.zeros(2, np.float32)


def _ours_undecodable_name(f):
    f["tensors"].create_dataset(b"evil\xff\xfe.weight", data=np.zeros(2, np.float32))


def _keras3_soft_link(f):
    f["layers/dense/vars"]["2"] = h5py.SoftLink("/layers/dense/vars/0")


def _keras3_external_link(f):
    f["layers/dense/vars"]["2"] = h5py.ExternalLink("/etc/passwd", "/x")


def _keras3_external_dataset(f):
    f["layers/dense/vars"].create_dataset("2", shape=(4,), dtype="f4", external=[("/etc/hostname", 0, 16)])


def _keras3_shape_bomb(f):
    f["layers/dense/vars"].create_dataset("2", shape=(10 ** 6, 10 ** 6), dtype="f4", chunks=(1000, 1000))


def _keras3_big_attribute(f):
    f.create_group("layers/evil/vars").attrs.create("name", BIG_ATTRIBUTE)
    f["layers/evil/vars"]["0"] = np.zeros(2, np.float32)


def _keras3_control_name(f):
    f["layers/dense/vars"]["2\x1b]0;pwned\x07"] = np.zeros(2, np.float32)


def _keras3_cycle(f):
    f["layers/dense/vars"]["loop"] = f["layers"]


def _legacy_dotdot_weight(f):
    f["conv"].attrs["weight_names"] = np.array([b"../bn/bn/gamma:0"])


def _legacy_absolute_weight(f):
    f["conv"].attrs["weight_names"] = np.array([b"/bn/bn/gamma:0"])


def _legacy_slash_layer(f):
    f.attrs["layer_names"] = np.array([b"conv/conv", b"bn"])


def _legacy_big_attribute(f):
    f.create_group("evil").attrs.create("weight_names", BIG_ATTRIBUTE)
    f.attrs["layer_names"] = np.array([*f.attrs["layer_names"], b"evil"])


def _legacy_control_layer(f):
    f.attrs["layer_names"] = np.array([b"conv\x1b[31m", b"bn"])


def _legacy_external_link(f):
    f["conv"]["conv"]["evil:0"] = h5py.ExternalLink("/etc/passwd", "/x")
    f["conv"].attrs["weight_names"] = np.array([b"conv/evil:0"])


HOSTILE = {
    # name: (source file, mutate(f[, directory]), expected message)
    "ours-soft-link": ("cnn.h5", _ours_soft_link, r"is a soft link to '/tensors/output.bias'; soft links are refused"),
    "ours-external-link": ("cnn.h5", _ours_external_link, r"is an external link to '/etc/passwd'; links out of the file"),
    "ours-external-dataset": ("cnn.h5", _ours_external_dataset, r"/tensors/ext stores its data in external files"),
    "ours-virtual-dataset": ("cnn.h5", lambda f, d: _virtual(f["tensors"], "virt", d), r"virtual dataset"),
    "ours-shape-bomb": ("cnn.h5", _ours_shape_bomb, r"declares 4000000000000 bytes.*shape bomb"),
    "ours-absurd-attribute": ("cnn.h5", _ours_big_attribute, r"attribute 'role' of /tensors/extra.weight declares"),
    "ours-control-characters": ("cnn.h5", _ours_control_name, r"control characters or invalid UTF-8 in its name"),
    "ours-undecodable-name": ("cnn.h5", _ours_undecodable_name, r"control characters or invalid UTF-8 in its name"),
    "keras3-soft-link": ("keras3_cnn.weights.h5", _keras3_soft_link, r"soft link"),
    "keras3-external-link": ("keras3_cnn.weights.h5", _keras3_external_link, r"external link to '/etc/passwd'"),
    "keras3-external-dataset": ("keras3_cnn.weights.h5", _keras3_external_dataset, r"external files"),
    "keras3-virtual-dataset": ("keras3_cnn.weights.h5", lambda f, d: _virtual(f["layers/dense/vars"], "2", d),
                               r"virtual dataset"),
    "keras3-shape-bomb": ("keras3_cnn.weights.h5", _keras3_shape_bomb, r"shape bomb"),
    "keras3-absurd-attribute": ("keras3_cnn.weights.h5", _keras3_big_attribute, r"attribute 'name' of .* declares"),
    "keras3-control-characters": ("keras3_cnn.weights.h5", _keras3_control_name, r"control characters"),
    "keras3-hard-link-cycle": ("keras3_cnn.weights.h5", _keras3_cycle, r"reachable by two paths"),
    "legacy-dotdot-weight": ("tf_keras_cnn_weights.h5", _legacy_dotdot_weight, r"malformed weight name '\.\./bn"),
    "legacy-absolute-weight": ("tf_keras_cnn_weights.h5", _legacy_absolute_weight, r"malformed weight name '/bn"),
    "legacy-slash-in-layer": ("tf_keras_cnn_weights.h5", _legacy_slash_layer, r"layer 'conv/conv' is listed"),
    "legacy-absurd-attribute": ("tf_keras_cnn_weights.h5", _legacy_big_attribute, r"attribute 'weight_names'.*declares"),
    "legacy-control-characters": ("tf_keras_cnn_weights.h5", _legacy_control_layer, r"layer 'conv\\x1b\[31m' is listed"),
    "legacy-external-link": ("tf_keras_cnn_weights.h5", _legacy_external_link, r"external link to '/etc/passwd'"),
}


def _source(name: str) -> Path:
    return SAMPLES / name if (SAMPLES / name).exists() else PEERS / name


@pytest.fixture(params=sorted(HOSTILE))
def hostile(request, tmp_path) -> tuple[str, Path, str]:
    source, mutate, message = HOSTILE[request.param]
    path = tmp_path / f"{request.param}.h5"
    shutil.copyfile(_source(source), path)
    with h5py.File(path, "a", libver="latest") as f:
        if mutate.__code__.co_argcount == 2:
            mutate(f, str(tmp_path))
        else:
            mutate(f)
    return request.param, path, message


def test_hostile_hdf5_is_refused_by_the_library(hostile):
    _name, path, message = hostile
    with pytest.raises(CheckpointError, match=message) as info:
        with open_checkpoint(str(path)) as reader:
            for key in reader.keys():  # noqa: SIM118 - a reader, not a dict
                reader.read(key)
    assert info.value.path == str(path)


def test_hostile_hdf5_exits_4_with_one_line(hostile, tmp_path):
    """``inspect`` and ``convert``: exit 4, one ``Error:`` line naming the file, nothing written."""
    _name, path, message = hostile
    before = digest(path)
    result = invoke("inspect", path, code=ExitCode.BAD_CHECKPOINT)
    line = error_line(result)
    assert str(path) in line
    import re
    assert re.search(message, line), line
    output = tmp_path / "out" / "converted.safetensors"
    output.parent.mkdir()
    result = invoke("convert", path, "-o", output, code=ExitCode.BAD_CHECKPOINT)
    error_line(result)
    assert os.listdir(output.parent) == []
    assert digest(path) == before


def test_link_targets_are_never_opened(tmp_path, monkeypatch):
    """An external link's target is not even opened (refused from the link itself, in the child too)."""
    target = tmp_path / "target.h5"
    with h5py.File(target, "w") as f:
        f["x"] = np.zeros(2, np.float32)
    path = tmp_path / "linked.h5"
    shutil.copyfile(SAMPLES / "cnn.h5", path)
    with h5py.File(path, "a") as f:
        f["tensors"]["ext"] = h5py.ExternalLink(str(target), "/x")
    atime = os.stat(target).st_atime_ns
    os.utime(target, ns=(atime - 10 ** 9 * 3600, os.stat(target).st_mtime_ns))
    before = os.stat(target).st_atime_ns
    with pytest.raises(CheckpointError, match="external link"):
        open_checkpoint(str(path))
    opened = []
    real_file = h5py.File

    def spy(name, *args, **kwargs):
        opened.append(str(name))
        return real_file(name, *args, **kwargs)

    monkeypatch.setattr(h5py, "File", spy)
    monkeypatch.setattr(h5safe, "VALIDATE", False)
    with pytest.raises(CheckpointError, match="external link"):
        open_checkpoint(str(path))
    assert opened == [str(path)]
    assert os.stat(target).st_atime_ns == before


def test_control_characters_in_legitimate_keys_survive_escaped(tmp_path):
    """Keys may hold any character (format.md): our writer percent-encodes them, so they read back."""
    from modelsurgeon.core.formats.base import TensorInfo
    from modelsurgeon.core.formats.h5 import write_h5
    keys = ["evil\x1b[31m.weight", "line\nbreak.bias", "../up.weight", "a/b.weight", "%41.weight"]
    path = tmp_path / "odd.h5"
    write_h5(str(path), "structural", [TensorInfo(k, (2,), np.dtype("f4")) for k in keys],
             lambda info: np.full(2, keys.index(info.key), np.float32))
    with open_checkpoint(str(path)) as reader:
        assert reader.keys() == keys
        assert [float(reader.read(k)[0]) for k in keys] == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_inspect_never_prints_raw_control_characters(tmp_path):
    """A key with ESC or a newline (legal in every format) must not reach the terminal raw.

    Raw, ``\\x1b[2J`` would clear the user's screen and a newline would forge a table row. The
    human output must show such characters escaped (``\\x1b``, ``\\n``); ``--json`` escapes them.
    """
    from modelsurgeon.core.formats.base import TensorInfo
    from modelsurgeon.core.formats.safetensors_io import write_safetensors
    keys = ["evil\x1b[2J.weight", "forged\nrow.bias", "bell\x07.bias"]
    path = tmp_path / "odd.safetensors"
    write_safetensors(str(path), [TensorInfo(k, (2,), np.dtype("f4")) for k in keys],
                      lambda info: np.zeros(2, np.float32))
    result = invoke("inspect", path)
    shown = result.stdout
    assert "\x1b" not in shown and "\x07" not in shown, repr(shown)
    assert len(shown.splitlines()) == 1 + len(keys), repr(shown)  # header + one row per key
    document = json.loads(invoke("inspect", path, "--json").stdout)
    assert sorted(t["key"] for t in document["tensors"]) == sorted(keys)


# -- nothing runs from a file ---------------------------------------------------------------------

EVIL_TYPES = ["os.system", "__import__", "builtins.eval", "subprocess.Popen", "eval", "exec", "posix.system",
              "pickle.loads", "importlib.import_module", "Block", "HybridBlock", "SymbolBlock", "__class__",
              "modelsurgeon.core.engine.nn.Dense", "..Dense", "Dense.__init__", "Dense\x00", " Dense"]
EVIL_CONFIGS = [{"__class__": "os.system"}, {"__init__": "os.system"}, {"__reduce__": ["os.system", ["id"]]},
                {"units": {"__class__": "subprocess.Popen", "args": ["id"]}},
                {"units": "__import__('os').system('id')"}, {"activation": "os.system"},
                {"units": 4, "in_units": 3, "activation": "__import__('os').system('touch /tmp/pwned')"},
                {"units": 4, "in_units": 3, "weight_initializer": "os.system"},
                {"units": 4, "in_units": 3, "dtype": "object"}, {"units": 4, "in_units": 3, "dtype": "O"},
                {"units": 4, "in_units": 3, "prefix": "../../x", "params": {"__class__": "x"}}]
EVIL_OPS = ["eval", "exec", "__import__", "os.system", "subprocess.Popen", "getattr", "pickle.loads",
            "_contrib_eval", "Custom", "null "]


class Watch:
    """Records imports by name, calls of dangerous functions, and modules newly imported."""

    #: never to be called while a file is read (ast.literal_eval's compile() is allowed: it parses
    #: literals only, and our readers use it for MXNet attribute values)
    DANGEROUS = ((builtins, "eval"), (builtins, "exec"), (os, "system"), (os, "popen"), (os, "execv"),
                 (os, "execve"), (os, "posix_spawn"), (subprocess, "Popen"), (pickle, "loads"), (pickle, "load"),
                 (pickle, "Unpickler"), (importlib, "__import__"))

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.imports: list[str] = []
        self.calls: list[str] = []
        self.monkeypatch = monkeypatch
        self.modules = set(sys.modules)

    def __enter__(self) -> Watch:
        real_import = builtins.__import__
        real_import_module = importlib.import_module
        watch = self

        def spy_import(name, globals=None, locals=None, fromlist=(), level=0):
            watch.imports.append(name if not level else "." * level + name)
            return real_import(name, globals, locals, fromlist, level)

        def spy_import_module(name, package=None):
            # the CLI loads its own command modules by a fixed table; anything else is a finding
            if not name.startswith("modelsurgeon."):
                watch.calls.append(f"importlib.import_module({name!r})")
            return real_import_module(name, package)

        for owner, attr in self.DANGEROUS:
            self.monkeypatch.setattr(owner, attr, self._recorder(f"{owner.__name__}.{attr}", getattr(owner, attr)))
        self.monkeypatch.setattr(importlib, "import_module", spy_import_module)
        self.monkeypatch.setattr(builtins, "__import__", spy_import)
        return self

    def _recorder(self, label, real):
        def record(*args, **kwargs):
            if sys._getframe(1).f_code.co_filename.startswith("<frozen importlib"):
                return real(*args, **kwargs)  # the import system runs a module's code (seen as new modules)
            self.calls.append(label)
            raise AssertionError(f"{label} was called while reading a file")
        return record

    def __exit__(self, *exc) -> None:
        self.monkeypatch.undo()

    def assert_clean(self, evil: list[str] = ()) -> None:
        assert self.calls == [], self.calls
        new = sorted(set(sys.modules) - self.modules)
        assert new == [], f"modules imported while reading: {new}"
        ours = [n for n in self.imports if not n.startswith((".", "modelsurgeon"))]
        # libraries import os, warnings... internally on fixed names; a name taken from the file, or a
        # module that runs or unpickles code, must never be imported
        suspicious = [n for n in ours if n.split(".")[0] in ("subprocess", "pickle", "marshal", "ctypes", "posix",
                                                             "runpy", "code", "pty", "shutil")
                      or any(e.strip(". \x00") and e.strip(". \x00") in n for e in evil)]
        assert not suspicious, suspicious


def _doc(node) -> dict:
    return {"format": arch.DOCUMENT_FORMAT, "version": arch.DOCUMENT_VERSION, "root": node, "inputs": []}


def _crafted_h5(path: Path, architecture=None, graph=None, kind="structural") -> Path:
    from modelsurgeon.core.formats.base import TensorInfo
    from modelsurgeon.core.formats.h5 import write_h5
    arrays = {"0.weight": np.ones((4, 3), np.float32), "0.bias": np.zeros(4, np.float32)}
    write_h5(str(path), kind, [TensorInfo(k, a.shape, a.dtype) for k, a in arrays.items()],
             lambda info: arrays[info.key], architecture=architecture, graph=graph)
    return path


@pytest.fixture(scope="module")
def warmed(tmp_path_factory) -> None:
    """Run every code path once on benign files, so the watched runs import nothing of ours anew."""
    directory = tmp_path_factory.mktemp("warm")
    from modelsurgeon.core.engine import nn
    net = nn.HybridSequential()
    net.add(nn.Dense(4, in_units=3))
    net.initialize()
    benign = _crafted_h5(directory / "benign.h5", architecture=arch.describe(net))
    with open_checkpoint(str(benign)) as reader:
        model_from_reader(reader)
    invoke("inspect", benign)
    invoke("inspect", benign, "--tree")
    invoke("convert", benign, "-o", directory / "b.safetensors")
    with open_checkpoint(str(directory / "b.safetensors")) as reader:  # the safetensors package validates headers
        model_from_reader(reader)
    invoke("run", benign, "--random-input", "1,3", "-o", directory / "y.npy")
    graph = json.loads((SAMPLES / "cnn-symbol.json").read_text())
    read_graph_file(str(SAMPLES / "cnn-symbol.json"))
    from modelsurgeon.core.engine.symbol_block import SymbolBlock
    SymbolBlock(Graph.from_json(graph), ["data"])
    _crafted_h5(directory / "g.h5", graph=graph, kind="named")
    with open_checkpoint(str(Path(__file__).resolve().parent / "fixtures" / "mxnet" / "dtypes" / "names.npz")) as reader:
        for key in reader.keys():  # noqa: SIM118 - a reader, not a dict
            reader.read(key)
    for module in ("keras", "mxnet", "safetensors_io", "torch_io", "sharded"):
        importlib.import_module(f"modelsurgeon.core.formats.{module}")
    for name in ("inspect", "convert", "run", "rename", "replace-head", "diff", "graph"):
        invoke(name, "--help")
    # the error paths: unknown types and operators, UnsupportedOpError, exit-code mapping
    for doc in (_doc({"type": "Nope", "config": {}}), _doc({"type": "Dense", "config": {"bogus": 1}})):
        with pytest.raises(ModelSurgeonError):
            arch.build(doc)
    bad = _crafted_h5(directory / "bad.h5", architecture=_doc({"type": "Nope", "config": {}}))
    invoke("run", bad, "--random-input", "1,3", "-o", directory / "z.npy", code=None)
    invoke("inspect", bad, "--tree", code=None)


@pytest.mark.parametrize("evil", EVIL_TYPES)
def test_architecture_type_names_import_nothing(evil, tmp_path, monkeypatch, warmed):
    path = _crafted_h5(tmp_path / "evil.h5", architecture=_doc({
        "type": "HybridSequential", "config": {}, "children": [["0", {"type": evil, "config": {"command": "id"}}]]}))
    with Watch(monkeypatch) as watch:
        with open_checkpoint(str(path)) as reader:
            with pytest.raises(ModelSurgeonError, match="unknown layer type"):
                model_from_reader(reader)
        run = invoke("run", path, "--random-input", "1,3", "-o", tmp_path / "y.npy", code=None)
        tree = invoke("inspect", path, "--tree", code=None)
    watch.assert_clean([evil])
    assert run.exit_code in (ExitCode.BAD_CHECKPOINT, ExitCode.INVALID), run.stderr
    assert tree.exit_code in (0, ExitCode.BAD_CHECKPOINT, ExitCode.INVALID), tree.stderr
    assert not (tmp_path / "y.npy").exists()


@pytest.mark.parametrize("config", EVIL_CONFIGS, ids=lambda c: json.dumps(c)[:40])
def test_architecture_configs_call_nothing(config, tmp_path, monkeypatch, warmed):
    document = _doc({"type": "HybridSequential", "config": {}, "children": [["0", {"type": "Dense", "config": config}]]})
    path = _crafted_h5(tmp_path / "evil.h5", architecture=document)
    with Watch(monkeypatch) as watch:
        with contextlib.suppress(ModelSurgeonError):
            arch.build(document)
        run = invoke("run", path, "--random-input", "1,3", "-o", tmp_path / "y.npy", code=None)
    watch.assert_clean()
    assert run.exit_code in (0, ExitCode.BAD_CHECKPOINT, ExitCode.INVALID, ExitCode.MISMATCH), run.stderr
    assert not Path("/tmp/pwned").exists()


@pytest.mark.parametrize("op", EVIL_OPS)
def test_graph_operator_names_call_nothing(op, tmp_path, monkeypatch, warmed):
    graph = json.loads((SAMPLES / "cnn-symbol.json").read_text())
    first_op = next(n for n in graph["nodes"] if n["op"] != "null")
    first_op["op"] = op
    first_op.setdefault("attrs", {})["__class__"] = "os.system"
    symbol = tmp_path / "evil-symbol.json"
    symbol.write_text(json.dumps(graph))
    path = _crafted_h5(tmp_path / "evil.h5", graph=graph, kind="named")
    with Watch(monkeypatch) as watch:
        with pytest.raises(ModelSurgeonError, match="operator|op"):
            Graph.from_json(graph).check_ops()
        with pytest.raises(ModelSurgeonError):
            from modelsurgeon.core.engine.symbol_block import SymbolBlock
            SymbolBlock(read_graph_file(str(symbol)), ["data"])
        run = invoke("run", path, "--random-input", "1,3,32,32", "-o", tmp_path / "y.npy", code=None)
    watch.assert_clean([op])
    assert run.exit_code in (ExitCode.UNSUPPORTED, ExitCode.BAD_CHECKPOINT, ExitCode.INVALID), run.stderr


def test_npz_with_pickled_objects_is_refused_without_unpickling(tmp_path, monkeypatch, warmed):
    """An object array in a .npz is a pickle; it is refused from its header, never loaded."""
    path = tmp_path / "evil.npz"
    payload = np.array([{"x": 1}], dtype=object)
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("w.npy", "w") as handle:
            np.lib.format.write_array(handle, payload, allow_pickle=True)
    header_injection = tmp_path / "inject.npz"
    with zipfile.ZipFile(header_injection, "w") as archive:
        header = b"{'descr': \"__import__('os').system('id')\", 'fortran_order': False, 'shape': (1,), }"
        header += b" " * (-(len(header) + 11) % 64) + b"\n"
        archive.writestr("w.npy", b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header + b"\0" * 8)
    with Watch(monkeypatch) as watch:
        with pytest.raises(CheckpointError, match="Python objects|refused|dtype"):
            open_checkpoint(str(path))
        with pytest.raises(CheckpointError):
            open_checkpoint(str(header_injection))
        result = invoke("inspect", path, code=ExitCode.BAD_CHECKPOINT)
    watch.assert_clean()
    error_line(result)


def test_keras_model_config_code_is_kept_as_text(tmp_path, monkeypatch, warmed):
    """A Keras file's model_config with a Lambda layer (marshalled code) is metadata, never executed."""
    path = tmp_path / "lambda.h5"
    shutil.copyfile(PEERS / "keras3_cnn_legacy.h5", path)
    config = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {
        "function": ["4wEAAAAAAAAAAAAAAAEAAAACAAAAQwAAAHMEAAAAfABTACkBTqkAKQHaAXhyAQAAAHIBAAAA", None, None],
        "function_type": "lambda", "module": "os", "output_shape": None}}]}}
    with h5py.File(path, "a") as f:
        f.attrs["model_config"] = json.dumps(config)
    with Watch(monkeypatch) as watch:
        with open_checkpoint(str(path)) as reader:
            assert json.loads(reader.metadata["model_config"]) == config
            for key in reader.keys():  # noqa: SIM118 - a reader, not a dict
                reader.read(key)
        invoke("inspect", path)
        invoke("convert", path, "-o", tmp_path / "out.safetensors")
    watch.assert_clean(["marshal", "Lambda"])


def test_safetensors_documents_build_only_registered_layers(tmp_path, monkeypatch, warmed):
    """Our architecture carried in safetensors metadata goes through the same registry."""
    from modelsurgeon.core.formats.base import TensorInfo
    from modelsurgeon.core.formats.safetensors_io import ST_ARCHITECTURE, ST_KIND, write_safetensors
    path = tmp_path / "evil.safetensors"
    document = _doc({"type": "subprocess.Popen", "config": {"args": ["id"]}})
    write_safetensors(str(path), [TensorInfo("0.weight", (2,), np.dtype("f4"))], lambda i: np.zeros(2, np.float32),
                      metadata={ST_ARCHITECTURE: json.dumps(document), ST_KIND: "structural"})
    with Watch(monkeypatch) as watch:
        with open_checkpoint(str(path)) as reader:
            with pytest.raises(ModelSurgeonError, match="unknown layer type 'subprocess.Popen'"):
                model_from_reader(reader)
        run = invoke("run", path, "--random-input", "1,2", "-o", tmp_path / "y.npy", code=None)
    watch.assert_clean(["subprocess"])
    assert run.exit_code in (ExitCode.BAD_CHECKPOINT, ExitCode.INVALID)


def test_torch_files_are_loaded_only_with_weights_only(tmp_path, monkeypatch):
    """PyTorch files go through torch.load(weights_only=True) and nothing else (a stand-in torch records it)."""
    import types
    calls = []

    class Refused(Exception):
        pass

    def load(path, **kwargs):
        calls.append(kwargs)
        raise Refused("Weights only load failed. WeightsUnpickler error: Unsupported global: GLOBAL os.system "
                      "was not an allowed global by default")

    fake = types.ModuleType("torch")
    fake.load = load
    fake.Tensor = type("Tensor", (), {})
    monkeypatch.setitem(sys.modules, "torch", fake)
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as archive:  # torch.save's layout: <name>/data.pkl
        archive.writestr("evil/data.pkl", b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")
    with pytest.raises(CheckpointError, match="non-tensor Python objects.*os.system.*weights_only=True"):
        open_checkpoint(str(path))
    legacy = tmp_path / "legacy.pt"
    legacy.write_bytes(b"\x80\x02cos\nsystem\nq\x00.")
    with pytest.raises(CheckpointError, match="refused for safety"):
        open_checkpoint(str(legacy))
    assert calls and all(call.get("weights_only") is True for call in calls), calls


def test_the_watch_sees_imports_and_calls(monkeypatch):
    """The detector above is not blind: an import by name and a call of eval are both caught."""
    watch = Watch(monkeypatch)
    with watch:
        importlib.import_module("this")  # prints the Zen of Python to stdout (captured): a new module
        with pytest.raises(AssertionError, match="builtins.eval was called"):
            eval("1 + 1")
    assert "importlib.import_module('this')" in watch.calls and "builtins.eval" in watch.calls
    with pytest.raises(AssertionError):
        watch.assert_clean()
    sys.modules.pop("this", None)


# -- the HDF5 validator (h5safe.open_h5 walks a file in a forked child first) ---------------------

CORPUS = Path(__file__).resolve().parent / "fuzz_corpus"


def _forks(monkeypatch) -> list[int]:
    children = []
    real_fork = os.fork

    def fork():
        pid = real_fork()
        if pid:
            children.append(pid)
        return pid

    monkeypatch.setattr(h5safe.os, "fork", fork)
    monkeypatch.setattr(h5safe, "_validated", {})  # forget files validated by earlier tests
    return children


def _gone(pid: int) -> bool:
    return not os.path.exists(f"/proc/{pid}") or "(Z)" in Path(f"/proc/{pid}/stat").read_text()


def test_a_file_that_segfaults_the_hdf5_library_is_refused_in_this_process(monkeypatch):
    """Opened right here, not in a sandbox: without the validator this test process would die (SIGSEGV)."""
    children = _forks(monkeypatch)
    with pytest.raises(CheckpointError, match=r"the HDF5 library crashed \(SIGSEGV\) reading this file: it is corrupt"):
        open_checkpoint(str(CORPUS / "h5-named-role-attribute-segfault.h5"))
    assert len(children) == 1 and _gone(children[0])


def test_a_file_that_hangs_the_hdf5_library_is_refused_by_the_watchdog(monkeypatch):
    monkeypatch.setattr(h5safe, "VALIDATE_IDLE_TIMEOUT", 1.0)
    children = _forks(monkeypatch)
    with pytest.raises(CheckpointError, match="made no progress reading this file's metadata for 1 s"):
        open_checkpoint(str(CORPUS / "keras3-name-attribute-hang.h5"))
    assert len(children) == 1 and _gone(children[0])  # killed and reaped, not left spinning


def test_an_interrupt_while_validating_kills_the_child(monkeypatch):
    children = _forks(monkeypatch)

    class Interrupted:
        def register(self, *args):
            pass

        def poll(self, *args):
            raise KeyboardInterrupt

    monkeypatch.setattr(isolate.select, "poll", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        open_checkpoint(str(SAMPLES / "cnn.h5"))
    assert len(children) == 1 and _gone(children[0])


def test_crash_detection_does_not_need_the_exit_status(monkeypatch):
    """With SIGCHLD ignored the kernel reaps the child and its status is lost; the missing verdict on
    the pipe still tells a crash from a clean walk."""
    import signal
    monkeypatch.setattr(h5safe, "_validated", {})
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        with pytest.raises(CheckpointError, match=r"the HDF5 library crashed \(killed\) reading this file"):
            open_checkpoint(str(CORPUS / "h5-named-role-attribute-segfault.h5"))
        with open_checkpoint(str(SAMPLES / "cnn-named.h5")) as reader:
            assert reader.tensors
    finally:
        signal.signal(signal.SIGCHLD, previous)


def test_a_validated_file_is_walked_once_until_it_changes(tmp_path, monkeypatch):
    path = tmp_path / "model.h5"
    shutil.copyfile(SAMPLES / "cnn.h5", path)
    children = _forks(monkeypatch)
    for _ in range(3):
        with open_checkpoint(str(path)) as reader:
            reader.read("output.bias")
    assert len(children) == 1
    with h5py.File(path, "a") as f:  # changed: walked again
        f["tensors"]["output.bias"][0] = 1.0
    with open_checkpoint(str(path)):
        pass
    assert len(children) == 2


def test_the_validating_child_sees_what_the_readers_touch(tmp_path):
    """The child reads attributes, chunked data and variable-length strings; the corpus shows it catches
    the crash the reader would hit. Here: it walks a real file completely (every object, once)."""
    seen = []
    h5safe._walk_everything(str(SAMPLES / "cnn-named.h5"), lambda: seen.append(1))
    with h5py.File(SAMPLES / "cnn-named.h5") as f:
        objects, attributes = [], 0

        def count(name, obj):
            nonlocal attributes
            objects.append(name)
            attributes += len(obj.attrs)

        f.visititems(count)
        attributes += len(f.attrs)
    assert len(seen) == len(objects) + attributes


def test_for_our_files_the_child_runs_the_readers_own_listing(tmp_path):
    """The survey visits every tensor dataset (where the child reads chunked data), and what the child
    sends back is what the reader would have listed itself."""
    path = str(SAMPLES / "cnn-named.h5")
    visited = []
    with h5py.File(path) as f:
        here = h5.survey(f, path, lambda ds, plain: visited.append(ds))
        assert [ds.name.rsplit("/", 1)[1] for ds in visited] == list(f["tensors"])
    h5safe._validated.clear()
    assert h5safe.validate_in_child(path, h5.survey) == json.loads(json.dumps(here))
    assert h5safe.validate_in_child(path, h5.survey) is None  # validated already: the caller lists it


def test_a_file_the_listing_refuses_is_walked_and_the_reader_says_why(tmp_path):
    path = tmp_path / "odd.h5"
    shutil.copy(SAMPLES / "cnn.h5", path)
    with h5py.File(path, "a") as f:
        f["tensors"].create_group("not-a-tensor")
    h5safe._validated.clear()
    assert h5safe.validate_in_child(str(path), h5.survey) is None
    with pytest.raises(CheckpointError, match="/tensors/not-a-tensor is a group"):
        open_checkpoint(str(path))


# -- the table of bad inputs in docs/reliability.md --------------------------------------------------

def test_the_bad_inputs_table_is_true(tmp_path, monkeypatch):
    """Every row of the table in docs/reliability.md still says what the command prints and returns.

    The cases come from docs/make_reliability_table.py (which wrote the table from real runs of the
    console script); here they run in-process (quicker), except the one that needs a process without
    root's permission override. Rebuild the table with ``python docs/make_reliability_table.py --write``.
    """
    import importlib.util
    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("make_reliability_table", root / "docs" / "make_reliability_table.py")
    table = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, table)  # dataclasses look their module up there
    spec.loader.exec_module(table)
    documented = table.parse_table((root / "docs" / "reliability.md").read_text())
    assert list(documented) == [case.label for case in table.CASES], "the table and the cases differ: rebuild it"
    monkeypatch.setattr(h5safe, "VALIDATE_IDLE_TIMEOUT", 1.0)  # the watchdog row: 1 s here, 20 s in the table
    home = os.getcwd()

    def in_process(args, directory, privileged):
        if privileged == "nodac":
            return table.run_subprocess(args, directory, privileged)
        os.chdir(directory)
        try:
            result = invoke(*args, code=None)
        finally:
            os.chdir(home)
        return result.exit_code, result.stderr.strip()

    has_torch = importlib.util.find_spec("torch") is not None
    wrong = []
    for case in table.CASES:
        got = table.run_case(case, tmp_path, in_process)
        if got is None:
            continue  # a row that needs a tmpfs, where mounting is impossible: checked where it is possible
        code, seen = got
        seen = seen.replace("for 1 s", "for 20 s")
        expected_seen, expected_code = documented[case.label]
        if "PyTorch" in case.label and not has_torch:
            from modelsurgeon.core.formats.torch_io import NEEDS_TORCH
            expected_seen = f"Error: evil.pt: {NEEDS_TORCH}"
        if (seen, code) != (expected_seen, expected_code):
            wrong.append(f"{case.label}:\n  table: {expected_code} {expected_seen}\n  now:   {code} {seen}")
    assert not wrong, "rows that no longer hold (rebuild the table):\n" + "\n".join(wrong)
