"""`modelsurgeon average`: weighted means checked in PyTorch, inputs in several formats, every difference listed."""

from __future__ import annotations

import numpy as np
import pytest
from cli_helpers import error_line, invoke, parse_json, read_arrays

from modelsurgeon.cli.errors import ExitCode

torch = pytest.importorskip("torch")
st_torch = pytest.importorskip("safetensors.torch")


def _net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                               torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 5))


def _members(tmp_path, count=3):
    """``count`` trained-looking copies of the same net, saved as .pt, .safetensors and .pt."""
    paths, states = [], []
    for i in range(count):
        torch.manual_seed(i)
        net = _net()
        net.train()
        net(torch.randn(8, 3, 8, 8))  # running statistics and num_batches_tracked = 1
        state = {k: v.clone() for k, v in net.state_dict().items()}
        path = tmp_path / (f"m{i}.safetensors" if i == 1 else f"m{i}.pt")
        if i == 1:
            st_torch.save_file(state, str(path))
        else:
            torch.save(state, path)
        paths.append(path)
        states.append(state)
    return paths, states


def test_weighted_mean_in_mixed_formats_loads_strictly(tmp_path):
    paths, states = _members(tmp_path)
    out = tmp_path / "soup.pt"
    document = parse_json(invoke("average", *paths, "-o", out, "--weights", "1,2,1", "--json"), "average")
    assert document["weights"] == [0.25, 0.5, 0.25]
    assert document["averaged"] == len(states[0]) - 1 and document["taken_from_first"] == ["1.num_batches_tracked"]
    assert document["unequal"] == [] and document["notes"] == []
    soup = torch.load(out, weights_only=True)
    net = _net()
    net.load_state_dict(soup, strict=True)
    for key, value in soup.items():
        if key.endswith("num_batches_tracked"):
            assert value.dtype == torch.int64 and int(value) == 1
            continue
        expected = sum(w * s[key].double() for w, s in zip([0.25, 0.5, 0.25], states)).float()
        assert value.dtype == torch.float32
        assert torch.equal(value, expected), key


def test_bfloat16_inputs_stay_bfloat16_rounded_like_pytorch(tmp_path):
    paths = []
    states = []
    for i in range(2):
        torch.manual_seed(10 + i)
        state = {"w": torch.randn(64, 33).to(torch.bfloat16), "b": torch.randn(7).to(torch.bfloat16)}
        path = tmp_path / f"b{i}.safetensors"
        st_torch.save_file(state, str(path))
        paths.append(path)
        states.append(state)
    out = tmp_path / "avg.safetensors"
    invoke("average", *paths, "-o", out)
    loaded = st_torch.load_file(str(out))
    for key in ("w", "b"):
        assert loaded[key].dtype == torch.bfloat16
        expected = ((states[0][key].double() + states[1][key].double()) / 2).to(torch.bfloat16)
        assert torch.equal(loaded[key], expected)


def test_every_difference_is_listed_and_nothing_written(tmp_path):
    a = {"x": np.zeros((2, 3), np.float32), "y": np.zeros(4, np.float32), "z": np.zeros(2, np.float32),
         "u": np.zeros(1, np.float32)}
    b = {"x": np.zeros((3, 2), np.float32), "y": np.zeros(4, np.float16), "v": np.zeros(2, np.float32),
         "u": np.zeros(1, np.float32)}
    from safetensors.numpy import save_file
    save_file(a, str(tmp_path / "a.safetensors"))
    save_file(b, str(tmp_path / "b.safetensors"))
    out = tmp_path / "o.safetensors"
    result = invoke("average", tmp_path / "a.safetensors", tmp_path / "b.safetensors", "-o", out,
                    code=ExitCode.MISMATCH)
    message = error_line(result)
    assert "4 difference(s)" in message
    for part in ("1 missing: z", "1 not in the first: v", "x (2, 3) vs (3, 2)", "y float32 vs float16"):
        assert part in message
    assert not out.exists()


def test_unequal_integer_tensors_are_reported(tmp_path):
    from safetensors.numpy import save_file
    for i in range(2):
        arrays = {"w": np.full(3, i, np.float32), "steps": np.array(i + 5, np.int64)}
        save_file(arrays, str(tmp_path / f"{i}.safetensors"))
    out = tmp_path / "o.safetensors"
    document = parse_json(invoke("average", tmp_path / "0.safetensors", tmp_path / "1.safetensors", "-o", out,
                                 "--precision", "float32", "--json"), "average")
    assert document["unequal"] == ["steps"] and "taken from the first" in document["notes"][0]
    arrays = read_arrays(out)
    assert int(arrays["steps"]) == 5 and np.array_equal(arrays["w"], np.full(3, 0.5, np.float32))


def test_usage_errors_and_dry_run(tmp_path):
    paths, _ = _members(tmp_path, 2)
    out = tmp_path / "o.pt"
    assert "--weights" in error_line(invoke("average", *paths, "-o", out, "--weights", "1", code=2))
    assert "--weights" in error_line(invoke("average", *paths, "-o", out, "--weights", "a,b", code=2))
    assert "--weights" in error_line(invoke("average", *paths, "-o", out, "--weights", "1,-1", code=2))
    error_line(invoke("average", paths[0], "-o", out, code=2))
    document = parse_json(invoke("average", *paths, "-o", out, "--dry-run", "--json"), "average")
    assert document["dry_run"] and not out.exists()
    result = invoke("average", *paths, "-o", paths[0], "--force", code=ExitCode.INVALID)
    assert "is the input" in error_line(result)
    result = invoke("average", paths[0], paths[1], "-o", paths[1], "--force", code=ExitCode.INVALID)
    assert "is " in error_line(result)
