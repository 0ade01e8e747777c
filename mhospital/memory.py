"""glibc's malloc told to keep the memory a request frees for the next one, rather than give it back.

By default glibc serves each allocation past 128 KB-32 MB (a threshold it moves as it goes) with its own
`mmap` and returns it with `munmap` when freed, and gives the top of a heap back past twice that. A server
process frees every request's body and the copies made of it (a STOW-RS request of ten images: 2.4 MB,
read in a new thread each time under ASGI), so the next request takes the same memory from the kernel
again, a page fault and a zeroed page at a time: 350-700 faults and 2 ms of CPU per such request, a
twentieth of what storing its ten images costs (bench/BENCHMARKS.md). Allocations up to 32 MB (any request
body held in memory: FILE_UPLOAD_MAX_MEMORY_SIZE) now come from the heap, and up to 64 MB freed at its top
stays with the process.
"""

import ctypes

# mallopt's parameters (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest (HEAP_MAX_SIZE / 2 on 64-bit)
TRIM_THRESHOLD = 64 * 2**20


def malloc_keep_freed() -> bool:
    """Set the two thresholds; False where the C library is not glibc (musl has no mallopt)."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
