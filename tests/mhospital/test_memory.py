"""The web server's processes keep the memory a request frees for the next request (mhospital/memory.py):
with requests handled as under ASGI (the body read in one thread, copied and parsed in a new thread per
request), the kernel is no longer asked for fresh pages at every request."""

import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Fifty requests of a 3.3-4.0 MB body, as Django's ASGI handler and a STOW-RS view handle them; prints
# the page faults per request of the last thirty (once the process has what it needs).
REQUESTS = """
import os, resource, tempfile, threading
pieces = [os.urandom(size) for size in (65536, 131072, 200000, 65536)]

def request(n):
    body = tempfile.SpooledTemporaryFile(max_size=10 * 2**20, mode="w+b")
    for k in range(30 + n % 7):
        body.write(pieces[k % 4])
    body.seek(0)

    def view():
        data = body.read()
        parts = [bytes(data[i : i + 240_000 + n]) for i in range(0, len(data), 240_000)]
        return [bytearray(part) for part in parts]

    thread = threading.Thread(target=view)
    thread.start()
    thread.join()
    body.close()

for n in range(20):
    request(n)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for n in range(30):
    request(n)
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 30)
"""


def _faults_per_request(setup: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", setup + REQUESTS], cwd=ROOT, capture_output=True, text=True, timeout=120, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's malloc's")
def test_a_server_process_takes_no_new_pages_for_each_request_body() -> None:
    untuned = _faults_per_request("")
    served = _faults_per_request("import mhospital.asgi\n")  # the server's entry point, as uvicorn loads it
    assert untuned > 500  # glibc's default: every request's 2.5 MB taken from the kernel again
    assert served < 20
