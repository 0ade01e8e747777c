"""Instructions each server executes per instance accepted by STOW-RS: M-Hospital against Orthanc (issue 4).

    bash bench/stow_instructions.sh       # starts both servers under valgrind's callgrind, runs this

Times on this shared machine swing by a tenth from run to run; the instructions a process executes for the
same requests do not (callgrind counts them, whatever else the machine does). Both servers run under
callgrind; each gets a warm-up request, its counters are zeroed, the same instances are sent by the same
client, and its counters are dumped. Counted: the server process (M-Hospital: the one uvicorn process,
event loop and request threads; Orthanc: the whole process, its index in SQLite included). Not counted:
PostgreSQL, whose share `stow_bench.py` measures as CPU time (about a tenth of M-Hospital's).
127.0.0.1 only; a fixed number of instances; stops by itself.

Each server's count is also split by the library that executed it. Under valgrind a CPU's SHA extensions
are not offered, so OpenSSL hashes SHA-256 in plain x86 code: for M-Hospital's content addresses about 28
instructions a byte, a third of its count, where the machine itself hashes with SHA-NI (0.12 ms for the
bench's average 270 KB file). Counts compare changes to one server; across two programs, instructions
are not time (Python executes fewer per cycle than Orthanc's C++).
"""

import argparse
import json
import re
import shutil
import subprocess
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import requests
from dicomweb_client.api import DICOMwebClient
from stow_bench import corpus  # bench/, beside this script

CALLGRIND_CONTROL = shutil.which("callgrind_control") or "/usr/bin/callgrind_control"


def instructions(out_dir: Path, pid: int, send: Callable[[], None]) -> tuple[int, Counter[str]]:
    """Instructions the process executed while `send` ran, from a callgrind dump taken after it, and how
    many of them each library (shared object) executed."""
    subprocess.run([CALLGRIND_CONTROL, "--zero", str(pid)], check=True, capture_output=True)  # noqa: S603 - a pid
    send()
    before = set(out_dir.glob(f"*.{pid}.*"))
    subprocess.run([CALLGRIND_CONTROL, "--dump", str(pid)], check=True, capture_output=True)  # noqa: S603 - a pid
    for _ in range(600):  # the dump is written by the process itself, at its next basic block
        dumps = set(out_dir.glob(f"*.{pid}.*")) - before
        texts = [dump.read_text(errors="replace") for dump in dumps]
        summary = [line for text in texts for line in text.splitlines() if line.startswith("summary:")]
        if summary and all("\ntotals:" in text for text in texts):  # totals: the last line, written last
            libraries: Counter[str] = Counter()
            for text in texts:
                libraries.update(by_library(text))
            return sum(int(line.split()[1]) for line in summary), libraries
        time.sleep(0.1)
    raise SystemExit(f"no callgrind dump from process {pid}")


_NAMED = re.compile(r"^(c?ob)=\((\d+)\)(?: (.*))?$")


def by_library(dump: str) -> Counter[str]:
    """Instructions executed in each shared object, from a callgrind dump (its format: an `ob=` line names
    the object of the cost lines after it; the line after `calls=` is a callee's inclusive cost, not
    counted again)."""
    names: dict[str, str] = {}
    costs: Counter[str] = Counter()
    current, after_call = "?", False
    for line in dump.splitlines():
        named = _NAMED.match(line)
        if named:
            kind, number, name = named.groups()
            if name:
                names[number] = name.rsplit("/", 1)[-1]
            if kind == "ob":
                current = names.get(number, "?")
        elif line.startswith("calls="):
            after_call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if after_call:
                after_call = False
            elif len(fields := line.split()) > 1:
                costs[current] += int(fields[1])
    return costs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=100)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--mhospital", default="http://127.0.0.1:8076")
    parser.add_argument("--mhospital-pid", type=int, required=True)
    parser.add_argument("--orthanc", default="http://127.0.0.1:8043")
    parser.add_argument("--orthanc-pid", type=int, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--patient-id", required=True)
    parser.add_argument("--out-dir", type=Path, required=True, help="where callgrind writes its dumps")
    args = parser.parse_args()

    warm, *datasets = corpus(args.instances + 1, args.patient_id, per_study=20)
    batches = [datasets[i : i + args.batch] for i in range(0, len(datasets), args.batch)]
    results: dict[str, dict[str, float]] = {}
    for name, url, headers, pid in (
        ("orthanc", args.orthanc, {}, args.orthanc_pid),
        ("mhospital", args.mhospital, {"Authorization": f"Token {args.token}"}, args.mhospital_pid),
    ):
        session = requests.Session()
        session.headers.update(headers)
        client = DICOMwebClient(url=f"{url}/dicom-web", session=session)
        client.store_instances([warm])  # first-request costs (imports, caches, connections) are not counted

        def send(client: DICOMwebClient = client) -> None:
            for batch in batches:
                client.store_instances(batch)

        count, libraries = instructions(args.out_dir, pid, send)
        results[name] = {"instructions_per_instance_millions": count / len(datasets) / 1e6}
        print(f"{name}, millions of instructions per instance by library (shares of the count):")
        for library, spent in libraries.most_common(5):
            print(f"  {count * spent / libraries.total() / len(datasets) / 1e6:6.2f}  {library}")
    ours, peer = (results[name]["instructions_per_instance_millions"] for name in ("mhospital", "orthanc"))
    print(f"{len(datasets)} instances, {args.batch} per request, one request at a time")
    print(json.dumps(results, indent=2))
    print(f"instructions per accepted instance, ratio M-Hospital / Orthanc: {ours / peer:.2f}")


if __name__ == "__main__":
    main()
