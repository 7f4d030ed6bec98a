"""Why a target is missed and what would close it, from profiling (bench/README.md, "Findings", has the detail).

Shown in the results table only for rows that miss their target in a run. Keep each entry to what
the profile showed and the fix it points to; re-profile when the code changes.
"""

from __future__ import annotations

STREAM = (
    "we copy every byte twice through user space and pay interpreter start-up; cp copies once, inside the "
    "kernel (copy_file_range). Profile of `convert` on 1 GiB (cProfile, /usr/bin/time -v): ~0.3 s imports, "
    "0.25-0.27 s h5py reads (page cache -> a fresh array per tensor), 0.47-0.51 s h5py writes (array -> page "
    "cache), 0.37-0.41 s in File.close (ext4 writes out the delayed allocation when HDF5 truncates at close: "
    "the flush cp+fsync pays in sync); user 0.56 s + sys 0.50 s vs cp's sys 0.31 s. Fix: for every tensor "
    "passed through unchanged (all of convert/rename, all but the head in replace-head) copy bytes kernel-side: "
    "source offset from the reader (h5: contiguous unfiltered `Dataset.id.get_offset()`; safetensors/MXNet: "
    "header offsets), destination offset from the writer (h5: dataset created with H5D_ALLOC_TIME_EARLY and "
    "H5D_FILL_TIME_NEVER, then `get_offset()`; safetensors: our own layout), then `os.copy_file_range` "
    "(fall back to read/write on OSError). A prototype of that on this machine wrote 1 GiB h5->h5 in 0.93 s "
    "vs cp+fsync 0.78 s (0.84x, in-process). Where data must pass through Python (replace-head's new head, "
    "dtype changes) read into one reused buffer (`read_direct`/`readinto`): here fresh anonymous memory is "
    "expensive (reading 1 GiB into fresh arrays 1.9 s, into one reused buffer 0.21-0.28 s). With ~0.3 s of "
    "start-up a 1 GiB file cannot reach 0.85x of a 0.7-0.8 s cp+fsync even with a kernel copy: also trim "
    "the imports of the writing commands (numpy, h5py, rich only; not core.visual or the model zoo)"
)

WHY: dict[str, str] = {
    "2c": STREAM,
    "2s": STREAM,
    "2r": STREAM,
    "2h": STREAM,
    "2m": (
        "peak RSS is the interpreter and its imports (~55-65 MiB: numpy, h5py, click, rich) plus the tensors "
        "alive at once. Above budget means more than about one tensor is alive: check with tracemalloc which "
        "arrays overlap (the fetched array and a converted/contiguous copy, or the next tensor fetched before "
        "the last is released); the reused-buffer and copy_file_range fix for throughput also removes them"
    ),
    "1a": (
        "inspect should read metadata only; a gap that grows with file size means tensor data or per-dataset "
        "checks scale with bytes (profile `inspect --json` with cProfile on both files)"
    ),
    "1b": "start-up imports too much: `python -X importtime -m modelsurgeon.cli.main --version` shows what",
    "3": (
        "`rename --in-place` must not copy data. Seen during this work: a version of rename_in_place that "
        "copied the whole file for crash safety cost 1.6-2.9 s on 1 GiB vs 0.45 s on 1 MiB (cProfile: sendfile, "
        "fsync at close, os.replace unlinking the old file). The current code clones with FICLONE where the file "
        "system can and renames the links in place elsewhere (ext4 here); if this misses again, profile "
        "`rename --in-place` with cProfile on both files and look for a data copy"
    ),
    "4": (
        "in this VM the first touch of fresh memory after an idle spell is slow (freed pages go back to the "
        "host): reading the 244 MB file took 0.49-0.53 s right after 4 s idle, 0.11 s when the process had "
        "touched and freed 300 MiB first; MXNet pays that during its large import, outside the timed load. The "
        "workers therefore touch and free 512 MiB before timing, on both sides; a miss that remains is real: "
        "profile bench/workers/read_ours.py (the reader preadv's each tensor into a fresh array)"
    ),
    "5": (
        "two causes. (1) Machine load: with another process on one of the 2 cores, OpenBLAS's 2 pthreads "
        "(static split, spinning while they wait) slow the numpy engine 3-5x, while MXNet's OpenMP/MKL-DNN barely "
        "moves (same run, one core busy elsewhere: alexnet b1 numpy 106 ms at 2 threads, 29 ms at 1 thread; "
        "MXNet 28 ms and 25 ms); see the '1 thread each' rows, which stay comparable under such load. "
        "(2) Work outside BLAS: cProfile of resnet18_v1 b16 with 1 thread: per pass ~0.9 s conv GEMM, 0.41 s "
        "im2col copies (`view.reshape` of the strided window view), 0.1 s np.pad, 0.07 s batch norm, 0.06 s "
        "transposing (F,N,H,W) back to NCHW, 0.08 s pooling; MXNet/oneDNN does no im2col at all. Fixes, "
        "biggest first: fold inference BatchNorm into the preceding convolution's weight and bias; avoid the "
        "im2col copy for stride-1 3x3 convolutions (one GEMM per tap on the flattened padded plane, accumulated) "
        "or split the batch over 2 threads so the copies run in parallel with BLAS at 1 thread each; keep "
        "activations channel-major (C,N,H,W) between convolutions to drop the transpose; pad into a reused "
        "zero buffer instead of np.pad; ReLU in place"
    ),
    "6a": (
        "cProfile of `convert --max-shard-size 256MB` on 1 GiB: the same per-tensor reads and writes as one file, "
        "plus 12 fsyncs (atomic_output syncs each of the 6 files and then its directory, one after the other, "
        "so each shard's flush waits before the next shard is written) and 4 more HDF5 creates/closes. Fix: "
        "hand each finished shard's fsync to a background thread while the next shard is written (the place "
        "where 'in parallel where it helps' pays on a disk), and sync the directory once at the end"
    ),
    "6b": (
        "opening an index opens every shard (ShardedReader, core/formats/sharded.py) from a thread pool, but "
        "that gains nothing for h5 shards: h5py runs every HDF5 call under its one global lock and the "
        "per-dataset checks are Python under the GIL, so the index costs the sum of the shard opens plus the pool "
        "(open_checkpoint: index of 5 shards 123 ms vs the same 200 tensors in one file 72 ms; cProfile of "
        "inspect: 0.14 s waiting in lock.acquire). Fix: record each tensor's shape and dtype (and the "
        "architecture) in the index "
        "metadata so listing needs only the index, and open a shard on its first read(); keep threads for "
        "formats whose opening releases the GIL"
    ),
    "6c": (
        "as 6b for the opening (all shards opened up front through the pool: 0.21 s in lock.acquire in cProfile "
        "of `convert INDEX -o back.h5`), plus one extra file close per shard; reading itself is the same h5py "
        "path. Opening shards lazily and closing each once its tensors are copied closes most of it"
    ),
}


def why(row_id: str) -> str:
    """The explanation for ``row_id`` ("2cL", "5a16-1t"...): the longest matching prefix in WHY."""
    for n in range(len(row_id), 0, -1):
        if row_id[:n] in WHY:
            return WHY[row_id[:n]]
    return "not yet profiled"
