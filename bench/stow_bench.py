"""STOW-RS into M-Hospital and into Orthanc (the peer), same instances, same client, same concurrency.

    bash bench/stow_bench.sh              # starts both servers, seeds, runs this, stops them

Reports, for each server: instances per second accepted (all STOW requests answered), and the time until
every instance is indexed and previewed (M-Hospital: its pipeline marks each ready; Orthanc renders
previews on request, so its figure is the time to fetch every instance's /preview after the upload).
Runs against 127.0.0.1 only, a fixed number of instances, and stops by itself.
"""

import argparse
import io
import json
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import proc_cpu  # bench/, beside this script
import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

# Mixed sizes, as a regional hospital sends: small CT slices, ultrasound stills (JPEG 2000 and raw),
# CR chest films (JPEG 2000) and 30-frame ultrasound cine loops (JPEG baseline).
MIX = [
    ("CT_small.dcm", 50),
    ("US1_J2KR.dcm", 25),
    ("US1_UNCR.dcm", 10),
    ("RG3_J2KR.dcm", 10),
    ("examples_ybr_color.dcm", 5),
]


def corpus(count: int, patient_id: str, per_study: int) -> list[Dataset]:
    random.seed(965)
    samples = {name: pydicom.dcmread(str(get_testdata_file(name))) for name, _ in MIX}
    names = [name for name, weight in MIX for _ in range(weight)]
    out: list[Dataset] = []
    study = series = ""
    for n in range(count):
        if n % per_study == 0:
            study, series = generate_uid(), generate_uid()
        dataset = samples[random.choice(names)].copy()
        dataset.PatientID, dataset.PatientName = patient_id, "Bench^Patient"
        dataset.StudyInstanceUID, dataset.SeriesInstanceUID = study, series
        dataset.SOPInstanceUID = generate_uid()
        dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
        dataset.InstanceNumber = n % per_study + 1
        # Round-trip through bytes, so both servers get identical files, and the client does no work
        # on them during the timed part beyond what it always does.
        buffer = io.BytesIO()
        dataset.save_as(buffer, enforce_file_format=True)
        buffer.seek(0)
        out.append(pydicom.dcmread(buffer))
    return out


def stow(url: str, headers: dict[str, str], datasets: list[Dataset], batch: int, concurrency: int) -> float:
    session = requests.Session()
    session.headers.update(headers)
    client = DICOMwebClient(url=url, session=session)
    batches = [datasets[i : i + batch] for i in range(0, len(datasets), batch)]
    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        for _ in pool.map(client.store_instances, batches):
            pass
    return time.perf_counter() - started


# Whose CPU is whose: each server, and the PostgreSQL that only M-Hospital uses (Orthanc keeps its index in
# SQLite inside its own process); the worker that renders beside M-Hospital is counted apart.
DATABASE = "postgres: "
SERVERS = {"orthanc": ("Orthanc ",), "mhospital": ("uvicorn mhospital", DATABASE)}
PROXY = "nginx: "  # with --proxy nginx, its CPU is M-Hospital's too
WORKER = ("celery -A mhospital worker",)


def per_instance(after: proc_cpu.Snapshot, before: proc_cpu.Snapshot, patterns: tuple[str, ...], count: int) -> float:
    """Milliseconds of CPU per instance the matching processes spent between the two snapshots."""
    return (after.of(patterns=patterns) - before.of(patterns=patterns)) * 1000 / count


def wait_until(done: Callable[[], bool], timeout: float) -> float:
    started = time.perf_counter()
    while not done():
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"not done after {timeout} s")
        time.sleep(0.2)
    return time.perf_counter() - started


def cine_latency(args: argparse.Namespace, datasets: list[Dataset]) -> dict[str, float]:
    """Seconds from the start of a STOW of one 30-frame ultrasound loop until its previews are ready, on
    the machine left idle after the main run: one loop at a time."""
    from diagnostics.models import Instance

    loop = next(d for d in datasets if int(d.get("NumberOfFrames", 1)) == 30)
    session = requests.Session()
    session.headers["Authorization"] = f"Token {args.token}"
    client = DICOMwebClient(url=f"{args.mhospital}/dicom-web", session=session)
    timings = []
    for _ in range(args.cine):
        dataset = loop.copy()
        dataset.SOPInstanceUID = dataset.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        started = time.perf_counter()
        client.store_instances([dataset])
        ready = Instance.objects.filter(sop_instance_uid=dataset.SOPInstanceUID, status="ready")
        wait_until(ready.exists, timeout=120)
        timings.append(time.perf_counter() - started)
    return {"min": min(timings), "median": statistics.median(timings), "max": max(timings)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instances", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=10, help="instances per STOW request")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--per-study", type=int, default=20)
    parser.add_argument("--mhospital", default="http://127.0.0.1:8078")
    parser.add_argument("--orthanc", default="http://127.0.0.1:8042")
    parser.add_argument("--token", required=True, help="an API token of a clinician of the patient's hospital")
    parser.add_argument("--patient-id", required=True, help="that patient's record number")
    parser.add_argument("--only", choices=["mhospital", "orthanc"], default=None)
    parser.add_argument("--cine", type=int, default=5, help="30-frame ultrasound loops to time one by one, idle")
    parser.add_argument("--previews", type=int, default=1, help="0: time the upload only, not the previews")
    parser.add_argument("--rounds", type=int, default=1, help="more: the accept again, alternating, with medians")
    parser.add_argument("--proxy", choices=["nginx"], default=None, help="M-Hospital is behind nginx: count its CPU")
    args = parser.parse_args()
    if args.rounds > 1 and (args.previews or args.only):
        parser.error("--rounds above 1 times the accept of both servers alone: give --previews 0 and no --only")

    datasets = corpus(args.instances, args.patient_id, args.per_study)
    megabytes = sum(len(d.PixelData) for d in datasets) / 2**20
    frames = sum(int(d.get("NumberOfFrames", 1)) for d in datasets)
    print(f"{len(datasets)} instances, {frames} frames, {megabytes:.0f} MB of pixel data")
    results: dict[str, dict[str, float]] = {}

    if args.only in (None, "orthanc"):
        results["orthanc"] = orthanc_accept(args, datasets)
        seconds = results["orthanc"]["accept_s"]
        if args.previews:
            ids = requests.get(f"{args.orthanc}/instances", timeout=60).json()
            session = requests.Session()
            started = time.perf_counter()
            with ThreadPoolExecutor(args.concurrency) as pool:
                list(pool.map(lambda i: session.get(f"{args.orthanc}/instances/{i}/preview", timeout=120).content, ids))
            results["orthanc"]["previewed_s"] = seconds + (time.perf_counter() - started)

    if args.only in (None, "mhospital"):
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhospital.settings")
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        import django

        django.setup()
        from diagnostics.models import Instance

        before = Instance.objects.filter(status=Instance.Status.READY).count()
        results["mhospital"] = mhospital_accept(args, datasets)
        seconds = results["mhospital"]["accept_s"]
        if args.previews:
            waited = wait_until(
                lambda: Instance.objects.filter(status__in=["ready", "failed"]).count() - before >= len(datasets),
                timeout=3600,
            )
            results["mhospital"]["previewed_s"] = seconds + waited
            results["mhospital"]["failed"] = Instance.objects.filter(status="failed").count()

    if args.cine and args.only in (None, "mhospital"):
        results["cine_30_frames_ready_s"] = cine_latency(args, datasets)
    print(json.dumps(results, indent=2))
    if "orthanc" in results and "mhospital" in results:
        ours, peer = results["mhospital"], results["orthanc"]
        print(f"accept rate ratio M-Hospital / Orthanc: {ours['rate'] / peer['rate']:.2f}")
        print(
            "server CPU per accepted instance ratio M-Hospital / Orthanc: "
            f"{ours['server_cpu_ms_per_instance'] / peer['server_cpu_ms_per_instance']:.2f}"
        )
        if args.previews:
            print(f"time to all previews ratio M-Hospital / Orthanc: {ours['previewed_s'] / peer['previewed_s']:.2f}")
        if args.rounds > 1:
            rounds_compare(args, ours, peer)


def orthanc_accept(args: argparse.Namespace, datasets: list[Dataset]) -> dict[str, float]:
    cpu, client = proc_cpu.snapshot(), time.process_time()
    seconds = stow(f"{args.orthanc}/dicom-web", {}, datasets, args.batch, args.concurrency)
    spent, client = proc_cpu.snapshot(), time.process_time() - client
    return {
        "accept_s": seconds,
        "rate": len(datasets) / seconds,
        "server_cpu_ms_per_instance": per_instance(spent, cpu, SERVERS["orthanc"], len(datasets)),
        "client_cpu_ms_per_instance": client * 1000 / len(datasets),
    }


def mhospital_accept(args: argparse.Namespace, datasets: list[Dataset]) -> dict[str, float]:
    headers = {"Authorization": f"Token {args.token}"}
    proxy = (PROXY,) if args.proxy else ()
    statistics_refresh()
    cpu, client = proc_cpu.snapshot(), time.process_time()
    seconds = stow(f"{args.mhospital}/dicom-web", headers, datasets, args.batch, args.concurrency)
    spent, client = proc_cpu.snapshot(), time.process_time() - client
    return {
        "accept_s": seconds,
        "rate": len(datasets) / seconds,
        "server_cpu_ms_per_instance": per_instance(spent, cpu, SERVERS["mhospital"] + proxy, len(datasets)),
        # The client shares the machine's two cores: the same for both servers, it narrows their rates' ratio
        # against their CPU's.
        "client_cpu_ms_per_instance": client * 1000 / len(datasets),
        "of_which_database_ms_per_instance": per_instance(spent, cpu, (DATABASE,), len(datasets)),
        **({"of_which_proxy_ms_per_instance": per_instance(spent, cpu, proxy, len(datasets))} if proxy else {}),
        "worker_cpu_during_accept_s": spent.of(patterns=WORKER) - cpu.of(patterns=WORKER),
    }


def statistics_refresh() -> None:
    """ANALYZE the image tables, as autovacuum would have done by now, where the server runs without it
    (as this machine's does). Planned on the statistics of the empty tables the bench starts from,
    PostgreSQL read every series row for each image's foreign-key check: its CPU per instance doubled
    over five rounds of 2,000 (bench/BENCHMARKS.md)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        if cursor.fetchone()[0] == "off":
            cursor.execute("ANALYZE diagnostics_study, diagnostics_series, diagnostics_instance")


def rounds_compare(args: argparse.Namespace, ours: dict[str, float], peer: dict[str, float]) -> None:
    """More rounds of the accept alone, the two servers alternating, each round with new UIDs: the ratios
    of each round and their median. On a shared machine one pair of runs moves by a tenth or more."""
    pairs = [(ours, peer)]
    for _ in range(args.rounds - 1):
        datasets = corpus(args.instances, args.patient_id, args.per_study)
        peer_round = orthanc_accept(args, datasets)
        pairs.append((mhospital_accept(args, datasets), peer_round))
    rates = [mine["rate"] / theirs["rate"] for mine, theirs in pairs]
    cpus = [mine["server_cpu_ms_per_instance"] / theirs["server_cpu_ms_per_instance"] for mine, theirs in pairs]
    for n, (mine, theirs) in enumerate(pairs, start=1):
        print(
            f"round {n}: Orthanc {theirs['rate']:.0f} inst/s, {theirs['server_cpu_ms_per_instance']:.2f} ms CPU; "
            f"M-Hospital {mine['rate']:.0f} inst/s, {mine['server_cpu_ms_per_instance']:.2f} ms CPU "
            f"(PostgreSQL {mine['of_which_database_ms_per_instance']:.2f}"
            + (f", nginx {mine['of_which_proxy_ms_per_instance']:.2f}" if args.proxy else "")
            + f"); client {mine['client_cpu_ms_per_instance']:.2f} ms CPU; rate ratio {rates[n - 1]:.2f}"
        )
    print(
        f"over {len(pairs)} rounds, accept rate ratio M-Hospital / Orthanc: median {statistics.median(rates):.2f} "
        f"({min(rates):.2f}–{max(rates):.2f}); server CPU ratio: median {statistics.median(cpus):.2f} "
        f"({min(cpus):.2f}–{max(cpus):.2f})"
    )


if __name__ == "__main__":
    main()
