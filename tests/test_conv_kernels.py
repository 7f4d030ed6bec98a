"""Convolution kernels cut into parallel tasks, against a float64 reference; bit-identical repeated calls.

The oracle comparisons with real MXNet are in test_ops_reference.py; here every path of
``ops/conv.py`` (bands of rows, several images per task, filter groups, 1x1 without copies,
depthwise, folded BatchNorm + ReLU) runs on one thread and on several, for odd shapes, groups,
strides, dilations, padding and batches of 1 and 16.
"""

from __future__ import annotations

import os
import threading
import zlib

import numpy as np
import pytest

from modelsurgeon.core.engine import initializer, ops, random
from modelsurgeon.core.engine.model_zoo import vision
from modelsurgeon.core.engine.ops import conv, parallel


def _rng(*key):
    """A generator seeded by the test's own parameters: the data never depends on which tests ran
    before in the same worker (products of other data round differently)."""
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _reference(x, w, b, stride, pad, dilate, groups):
    """Direct sum over kernel taps in float64."""
    x = np.pad(x.astype(np.float64), [(0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])])
    n, _, h, wd = x.shape
    k, cg, kh, kw = w.shape
    ho = (h - dilate[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (wd - dilate[1] * (kw - 1) - 1) // stride[1] + 1
    fg = k // groups
    out = np.zeros((n, k, ho, wo))
    for g in range(groups):
        xs, ws = x[:, g * cg:(g + 1) * cg], w[g * fg:(g + 1) * fg].astype(np.float64)
        for i in range(kh):
            for j in range(kw):
                tap = xs[:, :, i * dilate[0]: i * dilate[0] + stride[0] * (ho - 1) + 1: stride[0],
                         j * dilate[1]: j * dilate[1] + stride[1] * (wo - 1) + 1: stride[1]]
                out[:, g * fg:(g + 1) * fg] += np.einsum("nchw,kc->nkhw", tap, ws[:, :, i, j])
    return out if b is None else out + b.reshape(1, -1, 1, 1)


# (batch, channels, filters, input hw, kernel, stride, pad, dilate, groups): each reaches one path
CASES = {
    "bands_of_rows_b1": (1, 5, 7, (29, 27), (3, 3), (1, 1), (1, 1), (1, 1), 1),
    "filter_groups_b1": (1, 8, 140, (9, 8), (3, 3), (1, 1), (1, 1), (1, 1), 1),
    "several_images_per_task_b16": (16, 6, 9, (7, 9), (3, 3), (1, 1), (1, 1), (1, 1), 1),
    "strided_dilated_b16": (16, 4, 6, (13, 11), (3, 2), (2, 1), (2, 0), (2, 3), 2),
    "grouped_b1": (1, 12, 18, (31, 30), (3, 3), (2, 2), (1, 1), (1, 1), 3),
    "large_kernel_b1": (1, 3, 16, (47, 45), (7, 7), (2, 2), (3, 3), (1, 1), 1),
    "pointwise_b1": (1, 16, 24, (23, 21), (1, 1), (1, 1), (0, 0), (1, 1), 1),
    "pointwise_grouped_b16": (16, 8, 12, (5, 7), (1, 1), (1, 1), (0, 0), (1, 1), 4),
    "pointwise_strided_b16": (16, 8, 10, (9, 9), (1, 1), (2, 2), (0, 0), (1, 1), 1),
    "depthwise_b16": (16, 6, 6, (11, 10), (3, 3), (1, 1), (1, 1), (1, 1), 6),
    "depthwise_strided_b1": (1, 10, 10, (15, 14), (3, 3), (2, 2), (1, 1), (1, 1), 10),
    "depthwise_dilated_unpadded_b3": (3, 4, 4, (12, 13), (3, 3), (1, 1), (0, 0), (2, 2), 4),
    "depthwise_taps_b1": (1, 6, 6, (33, 31), (3, 3), (1, 1), (1, 1), (1, 1), 6),
    "depthwise_taps_strided_dilated_b2": (2, 5, 5, (64, 70), (3, 5), (2, 3), (2, 1), (2, 2), 5),
    "odd_b3": (3, 5, 11, (17, 6), (5, 3), (3, 1), (2, 1), (1, 2), 1),
}


def _case(name):
    n, c, k, hw, kernel, stride, pad, dilate, groups = CASES[name]
    gen = _rng(name)
    x = gen.standard_normal((n, c, *hw)).astype(np.float32)
    w = (gen.standard_normal((k, c // groups, *kernel)) / np.sqrt(c * kernel[0] * kernel[1])).astype(np.float32)
    b = gen.standard_normal(k).astype(np.float32)
    attrs = {"kernel": kernel, "stride": stride, "pad": pad, "dilate": dilate, "num_group": groups, "num_filter": k}
    return x, w, b, attrs


@pytest.fixture(params=["1", "3", "3-small-tasks"], ids=["serial", "threads", "threads-small-tasks"])
def threads(request, monkeypatch):
    """One thread; three; three with every layer cut as finely as it can be (these layers are too
    small to be worth more than one task otherwise), so that every cut runs."""
    count, _, small = request.param.partition("-")
    monkeypatch.setenv("MODELSURGEON_THREADS", count)
    if small:
        monkeypatch.setattr(parallel, "MIN_TASK_WORK", 1)
    return int(count)


@pytest.mark.parametrize("name", sorted(CASES))
def test_convolution_matches_the_reference(name, threads):
    x, w, b, attrs = _case(name)
    expected = _reference(x, w, b, attrs["stride"], attrs["pad"], attrs["dilate"], attrs["num_group"])
    got = ops.invoke("Convolution", [x, w, b], attrs)
    assert got.dtype == np.float32 and got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    again = ops.invoke("Convolution", [x, w, b], attrs)
    assert np.array_equal(got, again)


@pytest.mark.parametrize("name", sorted(CASES))
def test_threads_give_the_serial_result(name, monkeypatch):
    x, w, b, attrs = _case(name)
    monkeypatch.setattr(parallel, "MIN_TASK_WORK", 1)  # the finest cut, the same on both sides
    monkeypatch.setenv("MODELSURGEON_THREADS", "1")
    serial = ops.invoke("Convolution", [x, w, b], attrs)
    monkeypatch.setenv("MODELSURGEON_THREADS", "4")
    threaded = ops.invoke("Convolution", [x, w, b], attrs)
    np.testing.assert_allclose(threaded, serial, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["bands_of_rows_b1", "filter_groups_b1", "several_images_per_task_b16",
                                  "grouped_b1", "pointwise_grouped_b16", "depthwise_b16",
                                  "depthwise_taps_strided_dilated_b2"])
@pytest.mark.parametrize("fix_gamma", [False, True])
def test_folded_batch_norm_and_relu_match_the_layers_one_by_one(name, fix_gamma, threads):
    x, w, b, attrs = _case(name)
    k = attrs["num_filter"]
    gen = _rng(name, "norm")
    gamma, beta = gen.uniform(0.5, 2, k).astype(np.float32), gen.standard_normal(k).astype(np.float32)
    mean, var = gen.standard_normal(k).astype(np.float32), gen.uniform(0.1, 2, k).astype(np.float32)
    conv_attrs = dict(attrs)
    got = conv.convolution_batch_norm(x, w, b, gamma, beta, mean, var, conv=conv_attrs, eps=1e-5,
                                      fix_gamma=fix_gamma, relu=True)
    plain = _reference(x, w, b, attrs["stride"], attrs["pad"], attrs["dilate"], attrs["num_group"])
    scale = (1.0 if fix_gamma else gamma.astype(np.float64)) / np.sqrt(var.astype(np.float64) + 1e-5)
    expected = np.maximum((plain - mean.reshape(1, -1, 1, 1)) * scale.reshape(1, -1, 1, 1)
                          + beta.reshape(1, -1, 1, 1), 0)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert (got >= 0).all()


def test_small_im2col_blocks_cut_every_layer_the_same_way(monkeypatch):
    """Blocks of a few rows (the band cut when one image's matrix is too large) give the same sums."""
    x, w, b, attrs = _case("large_kernel_b1")
    whole = ops.invoke("Convolution", [x, w, b], attrs)
    monkeypatch.setattr(conv, "IM2COL_BLOCK", 3 * 7 * 7 * 4 * 24 * 2)
    banded = ops.invoke("Convolution", [x, w, b], attrs)
    np.testing.assert_allclose(banded, whole, rtol=1e-5, atol=1e-5)  # other cuts round differently


@pytest.mark.parametrize("name", ["large_kernel_b1", "depthwise_b16", "bands_of_rows_b1"])
def test_im2col_blocks_of_one_image_or_a_few_channels_give_the_same_sums(name, monkeypatch):
    """A cache-sized im2col block small enough to force one image (and few channels) per task."""
    monkeypatch.setattr(parallel, "MIN_TASK_WORK", 1)
    x, w, b, attrs = _case(name)
    whole = ops.invoke("Convolution", [x, w, b], attrs)
    monkeypatch.setattr(conv, "IM2COL_BLOCK", 9 * 11 * 12 * 4 * 2)
    small = ops.invoke("Convolution", [x, w, b], attrs)
    np.testing.assert_allclose(small, whole, rtol=1e-5, atol=1e-5)  # other cuts round differently


@pytest.mark.parametrize("shape, tasks", [
    ((1, 16, 32, 32, 16), 1),      # a CIFAR layer: 2.4M multiply-adds, one task in the calling thread
    ((1, 64, 56, 56, 64), 8),      # resnet18's first stage: 116M, as many tasks as are allowed
    ((16, 16, 32, 32, 16), 8),     # the CIFAR layer on 16 images
])
def test_a_layer_is_cut_into_as_many_tasks_as_its_work_pays_for(shape, tasks, monkeypatch):
    monkeypatch.setenv("MODELSURGEON_THREADS", "2")
    n, c, h, w, k = shape
    gen = _rng(shape)
    x = gen.standard_normal((n, c, h, w)).astype(np.float32)
    weight = gen.standard_normal((k, c, 3, 3)).astype(np.float32)
    counts, real_run = [], parallel.run

    def counting(batch):
        counts.append(len(batch))
        real_run(batch)

    monkeypatch.setattr(parallel, "run", counting)
    ops.invoke("Convolution", [x, weight], {"kernel": (3, 3), "pad": (1, 1), "num_filter": k, "no_bias": True})
    assert counts == [tasks]


@pytest.mark.parametrize("name, batch", [("resnet18_v1", 1), ("resnet18_v1", 16), ("alexnet", 1), ("alexnet", 3),
                                         ("mobilenet0.25", 16), ("resnet18_v2", 1)])
def test_a_model_gives_the_same_bits_on_every_call(name, batch, threads):
    """The first call (which finishes the deferred initialisation) is fused like the later ones."""
    net = vision.get_model(name, classes=10)
    random.seed(0)
    net.initialize(initializer.Xavier())
    size = 67 if name == "alexnet" else 32 if batch > 1 else 64
    x = np.random.default_rng(batch).standard_normal((batch, 3, size, size), dtype=np.float32)
    first, second, third = net(x), net(x), net(x)
    assert np.array_equal(first, second) and np.array_equal(second, third)


def _task(action):
    """A task that runs ``action`` and writes nothing of note (one element of its own)."""
    def compute(dest):
        action()
        dest[...] = 0
    return parallel.Task(np.empty(1), compute)


def test_a_failing_task_raises_in_the_caller(monkeypatch):
    monkeypatch.setenv("MODELSURGEON_THREADS", "3")
    done = []

    def bad():
        raise ValueError("task failed")

    with pytest.raises(ValueError, match="task failed"):
        parallel.run([_task(lambda: done.append(1)), _task(bad), _task(lambda: done.append(2))])
    parallel.run([_task(lambda i=i: done.append(i)) for i in range(10)])
    assert sorted(done[-10:]) == list(range(10))


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_task_computed_in_a_private_buffer_gives_the_bits_it_writes_in_place(name, monkeypatch):
    """A helper computes its task into its own buffer and copies it in; the caller writes in place."""
    x, w, b, attrs = _case(name)
    monkeypatch.setattr(parallel, "MIN_TASK_WORK", 1)
    monkeypatch.setenv("MODELSURGEON_THREADS", "1")
    gen = _rng(name, "norm")
    k = attrs["num_filter"]
    norm = [gen.uniform(0.5, 2, k), gen.standard_normal(k), gen.standard_normal(k), gen.uniform(0.1, 2, k)]
    norm = [a.astype(np.float32) for a in norm]
    dense = gen.standard_normal((3, 700)).astype(np.float32), gen.standard_normal((700, 900)).astype(np.float32)

    def layers():
        return (ops.invoke("Convolution", [x, w, b], attrs),
                conv.convolution_batch_norm(x, w, b, *norm, conv=dict(attrs), eps=1e-5, fix_gamma=False, relu=True),
                parallel.matmul(*dense))

    in_place = layers()
    monkeypatch.setattr(parallel.Task, "write", lambda task: np.copyto(task.target, parallel._private(task)))
    private = layers()
    for a, b_ in zip(in_place, private, strict=True):
        assert np.array_equal(a, b_)


def test_a_stalled_helpers_task_is_computed_by_the_caller_and_written_once(monkeypatch):
    """A helper that loses its core mid-task: the caller computes that task itself; the helper's late
    values never land, even after the caller has moved on and changed the output."""
    monkeypatch.setenv("MODELSURGEON_THREADS", "2")
    out = np.zeros((4, 3))
    helper_took, release, helper_finished = threading.Event(), threading.Event(), threading.Event()
    ran_by = []

    def part(i):
        def compute(dest):
            ran_by.append((i, threading.current_thread() is threading.main_thread()))
            if threading.current_thread() is threading.main_thread():
                helper_took.wait(30)  # the helper takes a task before the caller runs out of them
            else:
                helper_took.set()
                release.wait(30)  # descheduled, as far as the caller can tell
                helper_finished.set()
            dest[...] = i + 1
        return parallel.Task(out[i], compute)

    with parallel.forward_pass():
        parallel.run([part(i) for i in range(4)])
        assert (out == np.arange(1, 5).reshape(4, 1)).all()
        stalled = [i for i, by_caller in ran_by if not by_caller]
        assert len(stalled) == 1 and (stalled[0], True) in ran_by  # computed again by the caller
        out[...] = -1  # the next layer overwrites the output in place
        release.set()
    assert helper_finished.is_set()  # the pass waited for the helper before it ended
    assert (out == -1).all()


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2,
                    reason="needs two cores this process may use")
def test_a_helper_keeps_off_the_callers_core():
    caller = parallel._cpu()
    assert caller in os.sched_getaffinity(0)
    seen = []
    helper = threading.Thread(target=lambda: (parallel._avoid(caller), seen.append(os.sched_getaffinity(0))))
    helper.start()
    helper.join()
    assert seen == [os.sched_getaffinity(0) - {caller}]


def test_thread_count_follows_the_environment_then_the_cores(monkeypatch):
    monkeypatch.setenv("MODELSURGEON_THREADS", "5")
    assert parallel.thread_count() == 5
    monkeypatch.setenv("MODELSURGEON_THREADS", "nonsense")
    assert parallel.thread_count() >= 1
    monkeypatch.delenv("MODELSURGEON_THREADS")
    assert parallel.thread_count() == len(__import__("os").sched_getaffinity(0))


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="Linux only")
def test_a_helper_that_cannot_be_placed_is_left_to_the_scheduler(monkeypatch):
    def refused(pid, mask):
        raise OSError(22, "Invalid argument")

    monkeypatch.setattr(os, "sched_setaffinity", refused)
    monkeypatch.setitem(parallel._STATE, "pinning", None)
    helper = threading.Thread(target=parallel._avoid, args=(parallel._cpu(),))
    helper.start()
    helper.join()
    assert parallel._STATE["pinning"] is False
    monkeypatch.setenv("MODELSURGEON_THREADS", "2")
    done = []
    parallel.run([_task(lambda i=i: done.append(i)) for i in range(6)])  # the tasks still all run
    assert sorted(done) == list(range(6))


def test_blas_threads_are_restored_after_a_parallel_layer(monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.setenv("MODELSURGEON_THREADS", "2")
    before = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
    seen = []

    def task():
        seen.extend(lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas")

    parallel.run([_task(task), _task(task)])
    assert seen and set(seen) == {1}
    after = [lib["num_threads"] for lib in threadpoolctl.threadpool_info() if lib["user_api"] == "blas"]
    assert after == before


@pytest.mark.parametrize("shape", [(1, 9216, 4096), (16, 300, 1001), (3, 7, 5), (2, 64, 257)])
def test_dense_products_cut_by_columns_match_numpy(shape, threads):
    n, k, m = shape
    gen = _rng(shape)
    a = gen.standard_normal((n, k)).astype(np.float32)
    b = gen.standard_normal((m, k)).astype(np.float32)
    got = parallel.matmul(a, b.T)
    # sums of k products of unit normals are ~sqrt(k) in size; float32 rounds them to ~1e-7 of that
    expected = a.astype(np.float64) @ b.T.astype(np.float64)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5 * np.sqrt(k))
    assert np.array_equal(got, parallel.matmul(a, b.T))


def test_a_band_of_rows_that_lies_wholly_in_the_padding(monkeypatch):
    """A 1-row kernel with 2 rows of padding: one-row bands at the top and bottom read only zeros."""
    monkeypatch.setattr(conv, "IM2COL_BLOCK", 1)  # one output row per band
    gen = _rng("padding band")
    x = gen.standard_normal((2, 3, 6, 5)).astype(np.float32)
    w = gen.standard_normal((4, 3, 1, 3)).astype(np.float32)
    attrs = {"kernel": (1, 3), "stride": (1, 1), "pad": (2, 1), "num_filter": 4, "no_bias": True}
    got = ops.invoke("Convolution", [x, w], attrs)
    np.testing.assert_allclose(got, _reference(x, w, None, (1, 1), (2, 1), (1, 1), 1), rtol=1e-4, atol=1e-4)
    assert not got[:, :, :2].any() and not got[:, :, -2:].any()


@pytest.mark.parametrize("seed", range(4))
def test_random_layers_match_the_reference(seed, monkeypatch):
    """Random shapes, strides, dilations, padding, groups, depthwise layers, float64, non-contiguous
    inputs, each under a random cut (task size, im2col block, threads) and depthwise kernel."""
    gen = _rng("random layers", seed)
    for _ in range(50):
        n, groups, depthwise = int(gen.integers(1, 5)), int(gen.choice([1, 1, 2, 3])), gen.random() < 0.4
        c = int(gen.integers(1, 4)) * groups
        if depthwise:
            groups = c = int(gen.integers(2, 9))
        k = groups * (1 if depthwise else int(gen.integers(1, 5)))
        kernel, stride = tuple(int(v) for v in gen.integers(1, 5, 2)), tuple(int(v) for v in gen.integers(1, 3, 2))
        dilate, pad = tuple(int(v) for v in gen.integers(1, 3, 2)), tuple(int(v) for v in gen.integers(0, 3, 2))
        hw = [int(gen.integers(max(1, (kernel[i] - 1) * dilate[i] + 1 - 2 * pad[i]), 20)) for i in range(2)]
        dtype = gen.choice([np.float32, np.float64])
        x = gen.standard_normal((n, c, hw[0] + 1, hw[1])).astype(dtype)
        x = x[:, :, 1:] if gen.random() < 0.5 else np.ascontiguousarray(x[:, :, 1:])
        w = gen.standard_normal((k, c // groups, *kernel)).astype(dtype)
        b = gen.standard_normal(k).astype(dtype)
        monkeypatch.setattr(parallel, "MIN_TASK_WORK", int(gen.choice([1, 64, 2 << 20])))
        monkeypatch.setattr(conv, "IM2COL_BLOCK", int(gen.choice([4 << 20, 2000, 200])))
        monkeypatch.setattr(conv, "TAP_PIXELS", int(gen.choice([512, 1])))
        monkeypatch.setenv("MODELSURGEON_THREADS", str(gen.choice([1, 2, 3])))
        attrs = {"kernel": kernel, "stride": stride, "pad": pad, "dilate": dilate, "num_group": groups,
                 "num_filter": k}
        got = ops.invoke("Convolution", [x, w, b], attrs)
        assert got.dtype == dtype, attrs
        np.testing.assert_allclose(got, _reference(x, w, b, stride, pad, dilate, groups), rtol=1e-4, atol=1e-4,
                                   err_msg=str((attrs, x.shape)))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int32])
@pytest.mark.parametrize("size", [0, 1, 17, 4096, ops.common.ZEROS_LIMIT + 3])
def test_relu_gives_the_bits_of_numpys_maximum_with_zero(dtype, size):
    """The zero-array form keeps NaN, -0.0 and infinities exactly as ``np.maximum(x, 0)`` does, on
    contiguous and strided arrays, into a fresh array or in place."""
    gen = _rng("relu", size, np.dtype(dtype).str)
    x = (gen.standard_normal(size * 2) * 100).astype(dtype)
    if np.dtype(dtype).kind == "f" and size >= 17:
        x[:6] = [np.nan, -0.0, 0.0, np.inf, -np.inf, -np.nan]
    for view in (x, x[::2], x.reshape(-1, 2)[:, :1]):
        expected = np.maximum(view, 0)
        got = ops.common.relu(view)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        assert got.tobytes() == expected.tobytes()
        inplace = view.copy()
        ops.common.relu(inplace, out=inplace)
        assert inplace.tobytes() == expected.tobytes()


@pytest.mark.parametrize("depthwise", [False, True], ids=["im2col", "depthwise tap sums"])
def test_a_padded_layer_called_again_reads_only_its_new_input(depthwise, monkeypatch):
    """The zero-bordered buffers a layer keeps between calls (its padded input; a depthwise layer's
    phase images): a second input of the same geometry (and one of another geometry in between, and
    a read-only one) gives exactly what a fresh call gives."""
    monkeypatch.setenv("MODELSURGEON_THREADS", "1")
    monkeypatch.setattr(conv, "TAP_PIXELS", 1)
    gen = _rng("bordered")
    filters, groups = (3, 3) if depthwise else (4, 1)
    w = gen.standard_normal((filters, 3 // groups, 3, 3)).astype(np.float32)
    attrs = {"kernel": (3, 3), "pad": (1, 2), "num_filter": filters, "no_bias": True, "num_group": groups,
             "stride": (2, 1) if depthwise else (1, 1)}
    first, other, second = (gen.standard_normal(shape).astype(np.float32)
                            for shape in [(1, 3, 9, 7), (1, 3, 5, 7), (1, 3, 9, 7)])
    second.flags.writeable = False
    for x in (first, other, second):
        got = ops.invoke("Convolution", [x, w], attrs)
        expected = _reference(x, w, None, attrs["stride"], (1, 2), (1, 1), attrs["num_group"])
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
    assert np.array_equal(ops.invoke("Convolution", [second, w], attrs), got)
    assert np.array_equal(ops.invoke("Convolution", [np.zeros_like(second), w], attrs), np.zeros_like(got))


@pytest.mark.parametrize(("hw", "kernel", "dilate", "pad", "stride", "smaller"), [
    ((8, 8), (3, 3), (12, 12), (12, 12), (1, 1), (1, 1)),    # DeepLab's ASPP on an 8x8 map: the centre tap
    ((8, 5), (3, 3), (8, 1), (8, 1), (1, 1), (1, 3)),        # rows only
    ((3, 9), (5, 3), (2, 1), (4, 1), (1, 2), (3, 3)),        # outer rows read padding, inner ones do not
    ((1, 1), (2, 2), (3, 3), (3, 3), (2, 2), None),          # dead taps on one side only: kernel kept
    ((4, 4), (3, 3), (1, 1), (1, 1), (1, 1), None),          # every tap reads data
])
def test_taps_that_read_only_padding_are_left_out(hw, kernel, dilate, pad, stride, smaller, monkeypatch):
    monkeypatch.setenv("MODELSURGEON_THREADS", "1")
    gen = _rng("dead taps", hw, kernel, dilate, pad)
    x = gen.standard_normal((2, 4, *hw)).astype(np.float32)
    w = gen.standard_normal((6, 4, *kernel)).astype(np.float32)
    b = gen.standard_normal(6).astype(np.float32)
    seen = []
    real = conv._conv_gemm, conv._pointwise
    monkeypatch.setattr(conv, "_conv_gemm", lambda d, wt, *a: seen.append(wt.shape[2:]) or real[0](d, wt, *a))
    monkeypatch.setattr(conv, "_pointwise", lambda d, wt, *a: seen.append(wt.shape[2:]) or real[1](d, wt, *a))
    attrs = {"kernel": kernel, "stride": stride, "pad": pad, "dilate": dilate, "num_filter": 6}
    got = ops.invoke("Convolution", [x, w, b], attrs)
    np.testing.assert_allclose(got, _reference(x, w, b, stride, pad, dilate, 1), rtol=1e-4, atol=1e-4)
    assert seen == [smaller or kernel]


def test_batch_norm_folding_follows_parameters_changed_in_place():
    """The folded scale and shift are remembered by the statistics' bytes: changing a parameter's
    array in place between two passes gives the new result, for the folded convolution and BatchNorm."""
    gen = _rng("affine memo")
    x = gen.standard_normal((1, 3, 6, 6)).astype(np.float32)
    w = gen.standard_normal((4, 3, 3, 3)).astype(np.float32)
    gamma, beta, mean = (gen.standard_normal(4).astype(np.float32) for _ in range(3))
    var = gen.random(4).astype(np.float32) + 0.5
    conv_attrs = {"kernel": (3, 3), "pad": (1, 1), "num_filter": 4, "stride": (1, 1), "dilate": (1, 1),
                  "num_group": 1, "layout": None}
    norm_attrs = {"fix_gamma": "False", "eps": "1e-5"}

    def expected(data):
        return (data - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * gamma[:, None, None] \
            + beta[:, None, None]

    for _ in range(2):
        folded = ops.convolution_batch_norm(x, w, None, gamma, beta, mean, var, conv=conv_attrs, eps=1e-5,
                                            fix_gamma=False)
        plain = _reference(x, w, None, (1, 1), (1, 1), (1, 1), 1)
        np.testing.assert_allclose(folded, expected(plain), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(ops.invoke("BatchNorm", [x, gamma[:3], beta[:3], mean[:3], var[:3]], norm_attrs),
                                   ((x - mean[:3, None, None]) / np.sqrt(var[:3, None, None] + 1e-5)
                                    * gamma[:3, None, None] + beta[:3, None, None]), rtol=1e-5, atol=1e-5)
        var *= 3.0  # in place: the same arrays, new statistics
        gamma[0] = -gamma[0]
