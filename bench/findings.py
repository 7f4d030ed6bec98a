"""Why a target is missed and what would close it, from profiling (bench/README.md, "Findings", has the detail).

Shown in the results table only for rows that miss their target in a run. Keep each entry to what
the profile showed and the fix it points to; re-profile when the code changes.
"""

from __future__ import annotations

STREAM = (
    "unchanged tensors are copied by the kernel (copy_file_range) while a helper thread starts their writeback, "
    "as the floor row (2f: a Python program that only imports numpy/h5py/click and copies the file that way) "
    "does, so compare with 2f first: if the floor also trails cp+fsync, the disk or CPU was slow in this run. "
    "Above the floor each run pays ~0.05-0.08 s (installed, on the 1 MiB twin): the forked child that "
    "validates and lists the input (~20 ms of HDF5 calls for 200 datasets, plus the fork; the crash-safety "
    "net for corrupt files), our imports, and the output's metadata. In slow periods that fixed cost grows "
    "2-3x while cp's kernel copy does not; closing it for good would take dropping the validation of "
    "untrusted inputs (refused) or a resident process"
)

WHY: dict[str, str] = {
    "2c": STREAM,
    "2s": STREAM,
    "2r": STREAM,
    "2h": STREAM,
    "2m": (
        "peak RSS is the interpreter and its imports (~40-55 MiB: numpy, h5py, click) plus the tensors "
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
        "look at the per-turn range first: both sides are timed turn by turn, so a host that slows down hits "
        "both, but a turn disturbed on one side only shows there. Then profile (py-spy --native, or cProfile "
        "with time.process_time, of bench/workers/forward_ours.py with MODELSURGEON_THREADS=1 "
        "OPENBLAS_NUM_THREADS=1): convolutions are ~2/3 OpenBLAS sgemm (its packing included) and ~15% im2col "
        "copies, which oneDNN's direct JIT convolutions avoid; one core of ours does resnet18's batch-1 pass "
        "in ~1.6x MXNet's time, so the two-core rows depend on the pool's second thread. Beside a busy core, "
        "check where the threads run (/proc/PID/task/*/stat, field 39): if the helper sits on its caller's "
        "core, the two share it and the pass is no faster than on one thread (parallel._avoid). Check the "
        "machine too: on AVX-512 hosts MXNet's oneDNN is 25-30% faster than on AVX2 ones while numpy's "
        "OpenBLAS is not"
    ),
    "6a": (
        "writing shards: each shard is its own file with its own creation and metadata; shards are "
        "committed (fsync, rename, directory sync) on a helper thread while the next is written. Time the "
        "fsyncs of `convert --max-shard-size` (they should overlap the copying) and the per-shard set-up"
    ),
    "6b": (
        "listing an index opens every shard: for HDF5 shards that is one forked child per shard that validates "
        "and lists it, ~5-6 ms each on 2 cores whatever the pool size, against one child for a single file. "
        "One child that validates and lists every shard in turn, with the listings cached by file identity, "
        "would make it one fork; recording shapes and dtypes in the index would skip the shards altogether, "
        "at the price of trusting the index over the shards"
    ),
    "6c": (
        "as 6b for the opening (every shard validated and listed up front), plus one source file per shard "
        "for the kernel copies; reading is the same path as one file"
    ),
}


def why(row_id: str) -> str:
    """The explanation for ``row_id`` ("2cL", "5a16-1t"...): the longest matching prefix in WHY."""
    for n in range(len(row_id), 0, -1):
        if row_id[:n] in WHY:
            return WHY[row_id[:n]]
    return "not yet profiled"
