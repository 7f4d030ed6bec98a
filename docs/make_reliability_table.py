"""Build the table of bad inputs in docs/reliability.md from real runs of the ``modelsurgeon`` command.

Each case makes a bad input (or a bad output location) in a scratch directory, runs one command
on it, and records the one line the user sees on stderr and the exit code. Run it after changing
an error message or an exit code::

    python docs/make_reliability_table.py            # print the table
    python docs/make_reliability_table.py --write    # replace the table in docs/reliability.md

``tests/test_reliability_hostile.py::test_the_bad_inputs_table_is_true`` runs the same cases
(in-process, quicker) and fails when the table in the document no longer matches what happens.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "reliability.md"
SAMPLES = ROOT / "sample_models"
FIXTURES = ROOT / "tests" / "fixtures"
CORPUS = ROOT / "tests" / "fuzz_corpus"

sys.path.insert(0, str(ROOT / "tests"))
from system_helpers import console_script, drop_permission_override, tmpfs  # noqa: E402

START, END = "<!-- bad-inputs:start -->", "<!-- bad-inputs:end -->"


@dataclass(frozen=True)
class Case:
    label: str  # what was tried, as the table shows it
    make: Callable[[Path], list[str]]  # builds the input in the directory, returns the command's arguments
    privileged: str = ""  # "mount" (needs a tmpfs) or "nodac" (root must obey permissions): run as a subprocess
    slow: bool = False  # waits for the HDF5 watchdog


def _copy(directory: Path, source: Path, name: str) -> str:
    shutil.copyfile(source, directory / name)
    return name


def _h5_edit(directory: Path, name: str, change: Callable[..., None], source: Path = SAMPLES / "cnn.h5") -> str:
    import h5py
    _copy(directory, source, name)
    with h5py.File(directory / name, "a", libver="latest") as f:
        change(f)
    return name


def _write(directory: Path, name: str, data: bytes | str) -> str:
    path = directory / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return name


def _truncated(directory: Path, source: Path, name: str, keep: float = 0.5) -> str:
    data = source.read_bytes()
    return _write(directory, name, data[: int(len(data) * keep)])


def _virtual(f) -> None:
    import h5py
    layout = h5py.VirtualLayout(shape=(4,), dtype="f4")
    layout[:] = h5py.VirtualSource("other.h5", "data", shape=(4,))  # never opened: refused from the layout
    f["tensors"].create_virtual_dataset("virt", layout)


def _big_attribute(f) -> None:
    import numpy as np
    f["tensors"].create_dataset("extra.weight", data=np.zeros(2, np.float32)).attrs.create(
        "role", np.zeros(5 << 20, np.float32))


def _tensor(f, name: str) -> None:
    import numpy as np
    f["tensors"][name] = np.zeros(2, np.float32)


def _architecture(directory: Path, name: str, document: object) -> str:
    import numpy as np

    from modelsurgeon.core.formats.base import TensorInfo
    from modelsurgeon.core.formats.h5 import write_h5
    write_h5(str(directory / name), "structural", [TensorInfo("0.weight", (4, 3), np.dtype(np.float32)),
                                                   TensorInfo("0.bias", (4,), np.dtype(np.float32))],
             lambda info: np.zeros(info.shape, np.float32), architecture=document)
    return name


def _deep_architecture(directory: Path, name: str, depth: int) -> str:
    import h5py
    _architecture(directory, name, None)
    text = '{"format": "modelsurgeon-architecture", "version": 1, "root": ' + "[" * depth + "]" * depth + "}"
    with h5py.File(directory / name, "a") as f:
        f.require_group("meta").create_dataset("architecture", data=text, dtype=h5py.string_dtype())
    return name


def _evil_architecture(directory: Path, name: str) -> str:
    node = {"type": "HybridSequential", "config": {},
            "children": [["0", {"type": "os.system", "config": {"command": "touch pwned"}}]]}
    return _architecture(directory, name, {"format": "modelsurgeon-architecture", "version": 1, "root": node,
                                           "inputs": []})


def _graph(directory: Path, name: str, change: Callable[[dict], None]) -> str:
    graph = json.loads((FIXTURES / "mxnet" / "convbn" / "convbn-symbol.json").read_text())
    change(graph)
    return _write(directory, name, json.dumps(graph))


def _first_op(graph: dict) -> dict:
    return next(node for node in graph["nodes"] if node["op"] != "null")


def _params_claiming(directory: Path, name: str, count: int) -> str:
    with open(directory / name, "wb") as handle:
        handle.write(struct.pack("<QQQ", 0x112, 0, count))
        handle.truncate(24 + 4 * count + 8)
    return name


def _pickled_npz(directory: Path, name: str) -> str:
    import numpy as np
    with zipfile.ZipFile(directory / name, "w") as archive:
        with archive.open("w.npy", "w") as handle:
            np.lib.format.write_array(handle, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    return name


def _safetensors(directory: Path, name: str, header: bytes, data: bytes = b"") -> str:
    return _write(directory, name, struct.pack("<Q", len(header)) + header + data)


def _long_key(directory: Path, name: str, length: int) -> str:
    import numpy as np

    from modelsurgeon.core.formats.base import TensorInfo
    from modelsurgeon.core.formats.h5 import write_h5
    key = "k" * (length - len(".weight")) + ".weight"
    write_h5(str(directory / name), "structural", [TensorInfo(key, (2,), np.dtype(np.float32))],
             lambda info: np.zeros(2, np.float32))
    return name


def _locked(directory: Path) -> str:
    (directory / "locked").mkdir()
    (directory / "locked").chmod(0o500)
    return "locked/out.h5"


def _big_model(directory: Path) -> str:
    """A ~4 MB checkpoint (too big for a 1 MiB file system)."""
    import numpy as np

    from modelsurgeon.core.formats.base import TensorInfo
    from modelsurgeon.core.formats.h5 import write_h5
    write_h5(str(directory / "model.h5"), "structural",
             [TensorInfo(f"layers.{i}.weight", (256, 1024), np.dtype(np.float32)) for i in range(4)],
             lambda info: np.ones(info.shape, np.float32))
    return "model.h5"


def _cnn(directory: Path) -> str:
    return _copy(directory, SAMPLES / "cnn.h5", "model.h5")


CASES = [
    # -- inputs that are not checkpoints, or are damaged
    Case("a path that does not exist", lambda d: ["inspect", "missing.h5"]),
    Case("a directory", lambda d: (d / "folder").mkdir() or ["inspect", "folder"]),
    Case("an empty file", lambda d: ["inspect", _write(d, "empty.h5", b"")]),
    Case("a text file named `.h5`", lambda d: ["inspect", _write(d, "notes.h5", "just some text\n" * 20)]),
    Case("HDF5 cut in half", lambda d: ["inspect", _truncated(d, SAMPLES / "cnn.h5", "cut.h5")]),
    Case("HDF5 that is neither ours nor Keras", lambda d: ["inspect", _h5_edit(
        d, "foreign.h5", lambda f: f.attrs.__delitem__("format"))]),
    Case("HDF5 whose metadata segfaults the HDF5 library (corpus)",
         lambda d: ["inspect", _copy(d, CORPUS / "h5-named-role-attribute-segfault.h5", "segv.h5")]),
    Case("HDF5 whose metadata makes the HDF5 library loop forever (corpus)",
         lambda d: ["inspect", _copy(d, CORPUS / "keras3-name-attribute-hang.h5", "loop.h5")], slow=True),
    Case("HDF5 with 8 bytes overwritten in an object header (corpus)",
         lambda d: ["inspect", _copy(d, CORPUS / "h5-structural-object-header-keyerror.h5", "damaged.h5")]),
    # -- hostile HDF5
    Case("a soft link in `/tensors`", lambda d: ["inspect", _h5_edit(d, "soft.h5", lambda f: f["tensors"].__setitem__(
        "alias", __import__("h5py").SoftLink("/tensors/output.bias")))]),
    Case("an external link to `/etc/passwd`", lambda d: ["inspect", _h5_edit(d, "extlink.h5", lambda f: f[
        "tensors"].__setitem__("ext", __import__("h5py").ExternalLink("/etc/passwd", "/x")))]),
    Case("a dataset stored in an external file", lambda d: ["inspect", _h5_edit(d, "extdata.h5", lambda f: f[
        "tensors"].create_dataset("ext", shape=(4,), dtype="f4", external=[("/etc/hostname", 0, 16)]))]),
    Case("a virtual dataset", lambda d: ["inspect", _h5_edit(d, "virtual.h5", _virtual)]),
    Case("a shape bomb (a 4 TB dataset in a 40 KB file)", lambda d: ["inspect", _h5_edit(d, "bomb.h5", lambda f: f[
        "tensors"].create_dataset("bomb", shape=(10 ** 6, 10 ** 6), dtype="f4", chunks=(1000, 1000)))]),
    Case("a 20 MiB attribute", lambda d: ["inspect", _h5_edit(d, "attr.h5", _big_attribute)]),
    Case("a dataset name with an escape sequence", lambda d: ["inspect", _h5_edit(
        d, "ctrl.h5", lambda f: _tensor(f, "evil\x1b[2J.weight"))]),
    Case("a Keras weight name with `..`", lambda d: ["inspect", _h5_edit(
        d, "keras.h5", lambda f: f["conv"].attrs.__setitem__("weight_names", __import__("numpy").array(
            [b"../bn/bn/gamma:0"])), FIXTURES / "peers" / "tf_keras_cnn_weights.h5")]),
    # -- other formats
    Case("MXNet `.params` cut short", lambda d: ["inspect", _truncated(
        d, FIXTURES / "mxnet" / "convbn" / "convbn-0000.params", "cut.params", 0.7)]),
    Case("MXNet `.params` claiming 3 million arrays",
         lambda d: ["inspect", _params_claiming(d, "many.params", 3_000_000)]),
    Case("MXNet `.params` holding bfloat16", lambda d: ["inspect", _copy(
        d, FIXTURES / "mxnet" / "dtypes" / "dtype_bfloat16.params", "bf16.params")]),
    Case("MXNet `.params` with a sparse array", lambda d: ["inspect", _copy(
        d, FIXTURES / "mxnet" / "dtypes" / "sparse.params", "sparse.params")]),
    Case("safetensors whose header length runs past the end of the file", lambda d: ["inspect", _write(
        d, "past.safetensors", struct.pack("<Q", 1000) + b"{}")]),
    Case("safetensors whose header is not JSON", lambda d: ["inspect", _safetensors(d, "nojson.safetensors",
                                                                                    b"{not json}      ")]),
    Case("safetensors with overlapping tensors", lambda d: ["inspect", _safetensors(
        d, "overlap.safetensors", b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},'
                                  b'"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4)]),
    Case("`.npz` holding a pickled Python object", lambda d: ["inspect", _pickled_npz(d, "pickle.npz")]),
    Case("a PyTorch file holding `os.system`", lambda d: ["inspect", _write(
        d, "evil.pt", b"\x80\x02cos\nsystem\nq\x00X\x02\x00\x00\x00idq\x01\x85q\x02Rq\x03.")]),
    Case("`-symbol.json` with an operator named `eval`", lambda d: [
        "run", _copy(d, FIXTURES / "mxnet" / "convbn" / "convbn-0000.params", "convbn-0000.params"), "--symbol",
        _graph(d, "evil-symbol.json", lambda g: _first_op(g).update(op="eval")), "--random-input", "2,3,8,8"]),
    Case("`-symbol.json` whose `__shape__` is `(1e999,)`", lambda d: [
        "run", _copy(d, FIXTURES / "mxnet" / "convbn" / "convbn-0000.params", "convbn-0000.params"), "--symbol",
        _graph(d, "inf-symbol.json", lambda g: next(n for n in g["nodes"] if n["op"] == "null" and n["name"] != "data")[
            "attrs"].update(__shape__="(1e999,)")), "--random-input", "2,3,8,8"]),
    Case("`-symbol.json` nested 100,000 levels deep", lambda d: [
        "run", _copy(d, FIXTURES / "mxnet" / "convbn" / "convbn-0000.params", "convbn-0000.params"), "--symbol",
        _write(d, "deep-symbol.json", '{"nodes": [' + "[" * 100_000 + "]" * 100_000 + "]}"),
        "--random-input", "2,3,8,8"]),
    Case("an architecture naming the type `os.system`", lambda d: ["run", _evil_architecture(d, "evil.h5"),
                                                                   "--random-input", "1,3"]),
    Case("an architecture nested 10,000 levels deep", lambda d: ["inspect", _deep_architecture(d, "deep.h5", 10_000)]),
    # -- commands and option values
    Case("a mistyped command", lambda d: ["inpsect", _cnn(d)]),
    Case("`--classes 0`", lambda d: ["replace-head", _cnn(d), "-o", "out.h5", "--classes", "0"]),
    Case("`--keep-classes` beyond the old head's classes", lambda d: [
        "replace-head", _cnn(d), "-o", "out.h5", "--keep-classes", "3,12"]),
    Case("`--random-input` that is not a shape", lambda d: ["run", _cnn(d), "--random-input", "1,3,abc"]),
    # -- outputs
    Case("`-o` naming the input", lambda d: ["convert", _cnn(d), "-o", "model.h5", "--force"]),
    Case("`-o` naming a hard link to the input", lambda d: [
        "convert", _cnn(d), "-o", os.link(d / "model.h5", d / "alias.h5") or "alias.h5", "--force"]),
    Case("`-o` naming an existing file, without `--force`", lambda d: [
        "convert", _cnn(d), "-o", _write(d, "taken.h5", b"mine")]),
    Case("`-o` in a directory that does not exist", lambda d: ["convert", _cnn(d), "-o", "no/such/dir/out.h5"]),
    Case("`-o` in a directory without write permission", lambda d: ["convert", _cnn(d), "-o", _locked(d)],
         privileged="nodac"),
    Case("`-o` on a read-only file system", lambda d: ["convert", _cnn(d), "-o", "ro/out.h5"], privileged="mount:ro"),
    Case("`-o` on a full disk (1 MiB tmpfs, 4 MB output)", lambda d: ["convert", _big_model(d), "-o", "full/out.h5"],
         privileged="mount:rw"),
    Case("a 65,537-byte key written to MXNet `.params`", lambda d: ["convert", _long_key(d, "long.h5", 65_537),
                                                                    "-o", "out.params"]),
]


def run_subprocess(args: list[str], directory: Path, privileged: str = "") -> tuple[int, str]:
    done = subprocess.run([console_script(), *args], cwd=directory, capture_output=True, text=True,
                          preexec_fn=drop_permission_override if privileged == "nodac" else None)
    return done.returncode, done.stderr.strip()


Runner = Callable[[list[str], Path, str], tuple[int, str]]


def run_case(case: Case, scratch: Path, runner: Runner) -> tuple[int, str] | None:
    """(exit code, what the user sees) for one case; None where its conditions cannot be made here."""
    directory = scratch / f"case{CASES.index(case)}"
    directory.mkdir()
    args = case.make(directory)
    if case.privileged.startswith("mount:"):
        where = args[-1].split("/")[0]
        kind = case.privileged.split(":")[1]
        with tmpfs(directory / where, "ro,size=1m" if kind == "ro" else "size=1m") as ok:
            if not ok:
                return None
            code, text = runner(args, directory, case.privileged)
    else:
        code, text = runner(args, directory, case.privileged)
    if case.privileged == "nodac":
        (directory / "locked").chmod(0o700)
    return code, normalise(text, directory)


def normalise(text: str, directory: Path) -> str:
    """One line, paths relative to the case's directory."""
    text = text.replace(str(directory.resolve()), ".").replace(str(directory), ".")
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def command_text(case: Case) -> str:
    scratch = Path(tempfile.mkdtemp())
    try:
        directory = scratch / "c"
        directory.mkdir()
        args = case.make(directory)
    finally:
        for path in sorted(scratch.rglob("*"), reverse=True):
            with contextlib.suppress(OSError):
                path.chmod(0o700)
        shutil.rmtree(scratch, ignore_errors=True)
    return "modelsurgeon " + " ".join(args)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(results: list[tuple[Case, tuple[int, str] | None]]) -> str:
    rows = ["| input tried | command | what the user sees (stderr) | exit code |", "|---|---|---|---|"]
    for case, result in results:
        if result is None:
            continue
        code, seen = result
        rows.append(f"| {_cell(case.label)} | `{_cell(command_text(case))}` | {_cell(seen)} | {code} |")
    return "\n".join(rows)


def parse_table(document: str) -> dict[str, tuple[str, int]]:
    """label -> (what the user sees, exit code), from the table between the markers."""
    body = document.split(START, 1)[1].split(END, 1)[0]
    found = {}
    for line in body.strip().splitlines()[2:]:
        cells = [c.strip() for c in line.strip().strip("|").replace("\\|", "\0").split("|")]
        cells = [c.replace("\0", "|") for c in cells]
        found[cells[0]] = (cells[2], int(cells[3]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="replace the table in docs/reliability.md")
    options = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="reliability-table-"))
    try:
        results = [(case, run_case(case, scratch, run_subprocess)) for case in CASES]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    text = table(results)
    if options.write:
        document = DOC.read_text()
        before, rest = document.split(START, 1)
        after = rest.split(END, 1)[1]
        DOC.write_text(f"{before}{START}\n{text}\n{END}{after}")
        print(f"wrote {len(results)} rows to {DOC}")
    else:
        print(text)


if __name__ == "__main__":
    main()
