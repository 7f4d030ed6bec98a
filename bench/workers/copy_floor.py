"""Worker: the least any Python checkpoint tool can do to copy a file durably (benchmark 2's floor).

It imports what such a tool needs (numpy, h5py, click), copies the file in the kernel
(``copy_file_range``, as cp does) while a second thread starts the writeback of what is copied
(``sync_file_range``, as modelsurgeon's writers do), and fsyncs: no parsing, no validation, no
renaming. Its time against cp+fsync bounds the ratio ``convert`` can reach.

    python copy_floor.py SRC DST
"""

import ctypes
import os
import sys
import threading

import click  # noqa: F401  (start-up cost of a CLI)
import h5py  # noqa: F401
import numpy  # noqa: F401

source, target = sys.argv[1], sys.argv[2]
src = os.open(source, os.O_RDONLY)
dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
writeback = ctypes.CDLL(None).sync_file_range
writeback.argtypes = [ctypes.c_int, ctypes.c_longlong, ctypes.c_longlong, ctypes.c_uint]
wake, finished = threading.Event(), False


def start_writeback() -> None:
    while True:
        wake.wait()
        wake.clear()
        if finished:
            return
        writeback(dst, 0, 0, 2)  # SYNC_FILE_RANGE_WRITE: start writing out, do not wait


helper = threading.Thread(target=start_writeback)
helper.start()
size, done = os.fstat(src).st_size, 0
while done < size:
    done += os.copy_file_range(src, dst, min(64 << 20, size - done), done, done)
    wake.set()
finished = True
wake.set()
helper.join()
os.fsync(dst)
os.close(dst)
os.close(src)
