"""Shared fixtures for the engine and checkpoint tests.

* Every test runs inside its own :func:`modelsurgeon.core.name_scope`, so block names
  (``dense0``...) never depend on which tests ran before.
* :func:`mxnet_python` finds the interpreter of a real MXNet 1.9.1 install. Tests that need it
  use the ``mxnet_python_path`` fixture: it skips when MXNet is absent locally, but fails when
  the environment variable ``CI`` is set (CI must never silently skip the oracle).
* Zoo models are expensive to build at ``classes=1000`` (VGG-11 has 130M parameters); the
  ``zoo1000`` fixture builds each one at most once per session. Tests must not modify them.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from modelsurgeon import core

pytest_plugins = ["pytester"]  # test_ops_reference.py checks the MXNet gate in a nested run

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
MXNET_FIXTURES = FIXTURES / "mxnet"

#: The eight zoo models whose keys were recorded from real MXNet 1.9.1.
ZOO_MODELS = ("alexnet", "resnet18_v1", "resnet34_v1", "resnet18_v2", "vgg11", "squeezenet1.1",
              "mobilenet0.25", "mobilenet1.0")


@pytest.fixture(autouse=True)
def _fresh_name_scope() -> Iterator[None]:
    """Block-name counters start at 0 in every test."""
    with core.name_scope():
        yield


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(autouse=True)
def _seeded_init() -> Iterator[None]:
    """Initializers draw from a fixed seed in every test (reproducible failures)."""
    core.random.seed(1234)
    yield
    core.random.seed(None)


# -- real MXNet (through a subprocess only) ---------------------------------------------------

#: How to make the MXNet environment, as .ci/run does (the README's "Running the tests" says the same).
MXNET_SETUP = ("python3 -m venv .venv-mxnet && .venv-mxnet/bin/pip install numpy==1.23.5 mxnet==1.9.1, "
               "then run pytest with MS_MXNET_PYTHON=$PWD/.venv-mxnet/bin/python")


def mxnet_python() -> str:
    """The interpreter that has mxnet 1.9.1: $MS_MXNET_PYTHON, else .venv-mxnet/bin/python in the checkout
    (where .ci/run makes it)."""
    return os.environ.get("MS_MXNET_PYTHON") or str(Path(__file__).resolve().parent.parent / ".venv-mxnet" / "bin" / "python")


def _mxnet_available(python: str) -> tuple[bool, str]:
    if not os.path.isfile(python) or not os.access(python, os.X_OK):
        return False, (f"real MXNet 1.9.1 is needed (the oracle) and there is no interpreter at {python}; "
                       f"to run these tests: {MXNET_SETUP}")
    try:
        # find_spec, not import: importing mxnet takes a second or two
        done = subprocess.run([python, "-c", "import importlib.util, sys; "
                               "sys.exit(importlib.util.find_spec('mxnet') is None)"],
                              capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"{python} cannot run: {exc}"
    if done.returncode != 0:
        return False, (f"{python} cannot import mxnet: {done.stderr.decode(errors='replace')[-300:]}; "
                       f"to run these tests: {MXNET_SETUP}")
    return True, ""


@pytest.fixture(scope="session")
def mxnet_python_path() -> str:
    """Path of the MXNet interpreter; skip without it locally, fail without it under CI."""
    python = mxnet_python()
    ok, why = _mxnet_available(python)
    if not ok:
        if os.environ.get("CI"):
            pytest.fail(f"CI is set but the MXNet oracle is unavailable: {why}")
        pytest.skip(why)
    return python


def run_mxnet(python: str, script: str, *args: str, cwd: str | os.PathLike[str] | None = None,
              timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``script`` (Python source) under the MXNet interpreter; fail the test on error."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MXNET_ENGINE_TYPE="NaiveEngine")
    done = subprocess.run([python, "-c", script, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd, env=env)
    if done.returncode != 0:
        pytest.fail(f"MXNet subprocess failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done


@pytest.fixture(scope="session")
def mxnet_run(mxnet_python_path: str) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``mxnet_run(script, *args, cwd=None)``: run Python source under real MXNet (gated as above)."""
    def run(script: str, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
        return run_mxnet(mxnet_python_path, script, *args, **kwargs)
    return run


# -- models -------------------------------------------------------------------------------------

class TutorialModel(core.HybridBlock):
    """The tutorial's Model: three Dense(20) layers with relu in between."""

    def __init__(self) -> None:
        super().__init__()
        self.dense0 = core.nn.Dense(20)
        self.dense1 = core.nn.Dense(20)
        self.mydense = core.nn.Dense(20)

    def forward(self, x):
        x = core.nd.relu(self.dense0(x))
        x = core.nd.relu(self.dense1(x))
        return core.nd.relu(self.mydense(x))


@pytest.fixture
def tutorial_model() -> Callable[[], TutorialModel]:
    """A factory of initialised tutorial models (already run once on a (1, 20) batch)."""
    def make() -> TutorialModel:
        model = TutorialModel()
        model.initialize()
        model(np.zeros((1, 20), np.float32))
        return model
    return make


_ZOO_CACHE: dict[str, core.HybridBlock] = {}


@pytest.fixture(scope="session")
def zoo1000() -> Iterator[Callable[[str], core.HybridBlock]]:
    """Zoo models at classes=1000 whose shapes were fixed by a forward pass on 1x3x224x224.

    The pass is traced with placeholder weights (``trace(placeholders=True)``), so no Parameter
    holds data: VGG-11's 130M random weights would take seconds to draw. Cached; read-only.
    """
    def get(name: str) -> core.HybridBlock:
        if name not in _ZOO_CACHE:
            with core.name_scope():
                net = core.model_zoo.vision.get_model(name, classes=1000)
                net.trace(np.zeros((1, 3, 224, 224), np.float32), placeholders=True)
            _ZOO_CACHE[name] = net
        return _ZOO_CACHE[name]
    yield get
    _ZOO_CACHE.clear()


def _small_input(name: str, batch: int = 1) -> np.ndarray:
    """A random input of the size each zoo model needs (SqueezeNet's 13x13 AvgPool wants 224x224)."""
    size = 64
    if name.startswith("squeezenet"):
        size = 224
    elif name.startswith("alexnet"):
        size = 96
    elif name.startswith("vgg"):
        size = 32
    return np.random.default_rng(7).standard_normal((batch, 3, size, size)).astype(np.float32)


def _small_zoo_model(name: str, classes: int = 7) -> core.HybridBlock:
    """A zoo model with a small head, initialised (seeded) and run once on :func:`small_input`.

    BatchNorm statistics are made non-trivial so that mixing them up would show in outputs.
    """
    net = core.model_zoo.vision.get_model(name, classes=classes)
    core.random.seed(sum(map(ord, name)))
    net.initialize(core.init.Xavier())
    net(_small_input(name))
    gen = np.random.default_rng(3)
    for key, param in net.collect_params().items():
        if key.endswith(("running_mean", "beta")):
            param.set_data(gen.normal(0, 0.1, param.shape).astype(param.dtype))
        elif key.endswith(("running_var", "gamma")):
            param.set_data(gen.uniform(0.5, 1.5, param.shape).astype(param.dtype))
    return net


def _assert_same_params(a: core.Block, b: core.Block) -> None:
    """Same structural keys, shapes, dtypes and values."""
    pa, pb = a.collect_params(), b.collect_params()
    assert list(pa) == list(pb)
    for key in pa:
        da, db = pa[key].data(), pb[key].data()
        assert da.shape == db.shape, key
        assert da.dtype == db.dtype, key
        np.testing.assert_array_equal(da, db, err_msg=key)


# Helpers are handed out as fixtures (tests never import conftest).
@pytest.fixture(scope="session")
def small_input() -> Callable[..., np.ndarray]:
    return _small_input


_SMALL_ZOO_CACHE: dict[str, core.HybridBlock] = {}


@pytest.fixture(scope="session")
def small_zoo_model() -> Iterator[Callable[[str], core.HybridBlock]]:
    """``small_zoo_model(name)``: an initialised zoo model with classes=7, built once per session.

    Shared between tests: use it read-only (forward passes, tracing, saving and exporting are
    fine; a test that depends on the recorded input shape runs its own forward pass first).
    """
    def get(name: str) -> core.HybridBlock:
        if name not in _SMALL_ZOO_CACHE:
            with core.name_scope():
                _SMALL_ZOO_CACHE[name] = _small_zoo_model(name)
        return _SMALL_ZOO_CACHE[name]
    yield get
    _SMALL_ZOO_CACHE.clear()


@pytest.fixture(scope="session")
def assert_same_params() -> Callable[[core.Block, core.Block], None]:
    return _assert_same_params


@pytest.fixture(scope="session")
def tutorial_model_cls() -> type[TutorialModel]:
    return TutorialModel
