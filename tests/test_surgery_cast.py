"""`convert --dtype`: PyTorch's rounding, --keep-dtype, bytes saved, formats that cannot store a dtype."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from cli_helpers import CNN_KEYS, Workspace, error_line, read_arrays, ws  # noqa: F401

from modelsurgeon.cli.errors import ExitCode
from modelsurgeon.core.surgery import cast

torch = pytest.importorskip("torch")

NARROW = ("float16", "bfloat16", "float8_e4m3fn", "float8_e5m2")


def _hard_values(dtype: np.dtype) -> np.ndarray:
    """Random values over many magnitudes plus overflow, NaN, infinities, signed zeros, subnormals
    of every target type and exact halfway cases."""
    rng = np.random.default_rng(0)
    values = rng.standard_normal(200_000) * np.exp(rng.uniform(-40, 25, 200_000))
    special = [np.nan, -np.nan, np.inf, -np.inf, 0.0, -0.0, 448.0, 449.0, 464.0, 465.0, 479.0, 480.0, 1e6,
               57344.0, 61439.0, 61440.0, 65504.0, 65519.0, 65520.0, 3.0e38,
               2.0 ** -9, 2.0 ** -10, 2.0 ** -16, 2.0 ** -17, 2.0 ** -24, 2.0 ** -25, 3 * 2.0 ** -26, 1e-40, 1e-45,
               1 + 2.0 ** -8, 1 + 3 * 2.0 ** -8, 1 + 2.0 ** -11, 1 + 2.0 ** -11 + 2.0 ** -40, 1 + 2.0 ** -4,
               1 + 3 * 2.0 ** -4, 1 + 2.0 ** -3]
    values = np.concatenate([values, special, [-v for v in special]])
    with np.errstate(over="ignore"):
        return values.astype(dtype)


@pytest.mark.parametrize("source", ["float64", "float32", "float16"])
@pytest.mark.parametrize("dtype", (*NARROW, "float32"))
def test_rounding_is_pytorchs(source, dtype):
    values = _hard_values(np.dtype(source))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch.from_numpy(values).to(getattr(torch, dtype)).to(torch.float64).numpy()
    got = cast.cast_array(values, dtype)
    assert got.dtype == cast.DTYPES[dtype].array
    got = got.astype(np.float64)
    same = (got == expected) | (np.isnan(got) & np.isnan(expected))
    assert same.all(), (values[~same][:5], got[~same][:5], expected[~same][:5])
    # signed zeros too
    assert np.array_equal(np.signbit(got[got == 0]), np.signbit(expected[expected == 0]))


def _cnn_arrays(ws: Workspace) -> dict[str, np.ndarray]:
    return read_arrays(ws["cnn.h5"])


def test_bfloat16_torch_file_loads_with_pytorch_rounding(ws):
    out = ws.out("c.pt")
    document = ws.json("convert", ws["cnn.h5"], "-o", out, "--dtype", "bfloat16", "--keep-dtype", "running_",
                       command="convert")
    state = torch.load(out, weights_only=True)
    before = _cnn_arrays(ws)
    assert list(state) == CNN_KEYS
    for key, value in state.items():
        if "running_" in key:
            assert value.dtype == torch.float32
            assert np.array_equal(value.numpy(), before[key])
        else:
            assert value.dtype == torch.bfloat16
            assert torch.equal(value, torch.from_numpy(before[key]).to(torch.bfloat16))
    done = document["cast"]
    assert done["dtype"] == "bfloat16"
    assert sorted(done["kept"]) == sorted(k for k in CNN_KEYS if "running_" in k)
    assert len(done["tensors"]) == len(CNN_KEYS) - 4
    kept_bytes = sum(before[k].nbytes for k in done["kept"])
    total = sum(a.nbytes for a in before.values())
    assert done["bytes_before"] == total
    assert done["bytes_after"] == kept_bytes + (total - kept_bytes) // 2
    assert done["bytes_saved"] == (total - kept_bytes) // 2


@pytest.mark.parametrize("dtype", ["float8_e4m3fn", "float8_e5m2", "float16"])
def test_safetensors_stores_narrow_dtypes(ws, dtype):
    from safetensors.torch import load_file
    out = ws.out("c.safetensors")
    ws.invoke("convert", ws["cnn.h5"], "-o", out, "--dtype", dtype)
    loaded = load_file(str(out))
    before = _cnn_arrays(ws)
    for key, value in loaded.items():
        assert value.dtype == getattr(torch, dtype)
        assert torch.equal(value.to(torch.float32).nan_to_num(7.0),
                           torch.from_numpy(before[key]).to(value.dtype).to(torch.float32).nan_to_num(7.0))


def test_bfloat16_back_to_float32_is_exact_and_float16_fits_h5(ws):
    bf16 = ws.out("b.safetensors")
    ws.invoke("convert", ws["cnn.h5"], "-o", bf16, "--dtype", "bfloat16")
    back = ws.out("b32.h5")
    document = ws.json("convert", bf16, "-o", back, "--dtype", "float32", command="convert")
    assert {t["from"] for t in document["cast"]["tensors"]} == {"bfloat16"}
    assert document["cast"]["bytes_saved"] < 0
    before, after = _cnn_arrays(ws), read_arrays(back)
    for key in CNN_KEYS:
        assert after[key].dtype == np.float32
        assert np.array_equal(after[key], torch.from_numpy(before[key]).to(torch.bfloat16).float().numpy())
    half = ws.out("h.h5")
    ws.invoke("convert", ws["cnn.h5"], "-o", half, "--dtype", "float16")
    assert {a.dtype for a in read_arrays(half).values()} == {np.dtype(np.float16)}


def test_format_that_cannot_store_the_dtype_is_refused_before_writing(ws):
    out = ws.out("c.h5")
    result = ws.invoke("convert", ws["cnn.h5"], "-o", out, "--dtype", "bfloat16", code=ExitCode.INVALID)
    message = error_line(result)
    assert "cannot store bfloat16" in message and "safetensors" in message and "torch" in message
    assert not out.exists() and ws.output_files() == []
    result = ws.invoke("convert", ws["cnn.h5"], "-o", ws.out("c.params"), "--dtype", "float8_e5m2",
                       code=ExitCode.INVALID)
    assert "MXNet" in error_line(result)
    assert ws.output_files() == []


def test_dry_run_and_usage_errors(ws):
    out = ws.out("c.safetensors")
    document = ws.json("convert", ws["cnn.h5"], "-o", out, "--dtype", "float16", "--dry-run", command="convert")
    assert document["dry_run"] and document["cast"]["bytes_saved"] == document["cast"]["bytes_before"] // 2
    assert ws.output_files() == []
    result = ws.invoke("convert", ws["cnn.h5"], "-o", out, "--dtype", "float16", "--keep-dtype", "(", code=2)
    assert "--keep-dtype" in error_line(result)
    result = ws.invoke("convert", ws["cnn.h5"], "-o", out, "--keep-dtype", "bias", code=2)
    assert "--dtype" in error_line(result)
    ws.invoke("convert", ws["cnn.h5"], "-o", out, "--dtype", "float64", code=2)
    assert ws.output_files() == []


def test_integer_tensors_are_not_cast(tmp_path):
    from safetensors.numpy import save_file
    source = tmp_path / "m.safetensors"
    save_file({"w": np.linspace(-1, 1, 12, dtype=np.float32).reshape(3, 4),
               "bn.num_batches_tracked": np.array(5, np.int64)}, str(source))
    from cli_helpers import invoke, parse_json
    out = tmp_path / "o.safetensors"
    document = parse_json(invoke("convert", source, "-o", out, "--dtype", "bfloat16", "--json"), "convert")
    assert document["cast"]["not_floating"] == 1
    from safetensors.torch import load_file
    loaded = load_file(str(out))
    assert loaded["bn.num_batches_tracked"].dtype == torch.int64 and int(loaded["bn.num_batches_tracked"]) == 5
    assert loaded["w"].dtype == torch.bfloat16
