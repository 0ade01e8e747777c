"""HL7 v2 ORU^R01 from an analyser into M-Hospital: observations per second end to end, and how long a
critical result takes to reach a clinician's alert socket.

    bash bench/hl7_bench.sh               # starts the web server and a worker, seeds, runs this, stops them

Posts N messages (5 results each by default) to /api/v1/device/hl7 from a few concurrent clients (a device
token of a bench analyser), then waits until the worker has stored every one: observations/s is all the
results over the time from the first post until the last message is stored. Then the alert latency: one
critical troponin at a time, from the start of its POST until the `lab_alert` event arrives on the
notification WebSocket of a signed-in clinician of the hospital, while the bulk load runs ("under load")
and on the idle platform afterwards. Runs against 127.0.0.1 only, a fixed number of messages, and stops.
"""

import argparse
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import proc_cpu  # bench/, beside this script
import requests

ANALYTES = [  # normal values: the bulk load raises no alerts
    ("2345-7", "Glucose", "5.4", "mmol/L"),
    ("4548-4", "HbA1c", "5.2", "%"),
    ("2823-3", "Potassium", "4.2", "mmol/L"),
    ("2951-2", "Sodium", "140", "mmol/L"),
    ("2160-0", "Creatinine", "80", "umol/L"),
    ("718-7", "Haemoglobin", "140", "g/L"),
]
CONTENT_TYPE = "x-application/hl7-v2+er7"


def setup(patients: int) -> dict[str, Any]:
    """The bench hospital, its analyser (a fresh token), patients and a clinician with a session."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mhospital.settings")
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    from devices.models import Device
    from devices.services import device_token_issue
    from diagnostics.lab_reference import lab_reference_load
    from diagnostics.models import LabTest
    from hospitals.models import Hospital, Staff, User
    from patients.models import Patient

    if not LabTest.objects.exists():
        lab_reference_load()
    hospital, _ = Hospital.objects.get_or_create(
        name="HL7 Bench Regional Hospital", defaults={"kind": "regional", "region": "Bench Oblast"}
    )
    device, _ = Device.objects.get_or_create(
        hospital=hospital, name="Bench analyser", defaults={"kind": Device.Kind.LAB_ANALYSER}
    )
    user, created = User.objects.get_or_create(username="hl7bench.clinician", defaults={"first_name": "Bench"})
    if created:
        Staff.objects.create(user=user, hospital=hospital, role=Staff.Role.CLINICIAN)
    records = []
    for n in range(patients + 1):
        patient, _ = Patient.objects.get_or_create(
            hospital=hospital,
            record_number=f"HB-{n:05d}",
            defaults={"family_name": f"Bench{n}", "given_name": "Ivan", "sex": "male", "birth_date": "1970-01-01"},
        )
        records.append(patient.record_number)
    _, token = device_token_issue(device=device, by=user)
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    return {
        "token": token,
        "records": records[1:],
        "critical_record": records[0],  # alerts only for this patient
        "cookie": f"{settings.SESSION_COOKIE_NAME}={client.session.session_key}",
    }


def oru(control_id: str, record: str, taken: datetime, results: list[tuple[str, str, str, str]]) -> bytes:
    stamp = taken.astimezone(UTC).strftime("%Y%m%d%H%M%S+0000")
    lines = [
        f"MSH|^~\\&|BENCH|BENCH_LAB|MHOSPITAL|MH|{stamp}||ORU^R01^ORU_R01|{control_id}|P|2.5.1",
        f"PID|1||{record}^^^BENCH^MR",
        f"OBR|1||{control_id}|24323-8^Panel^LN|||{stamp}",
    ]
    for n, (code, name, value, unit) in enumerate(results, start=1):
        lines.append(f"OBX|{n}|NM|{code}^{name}^LN||{value}|{unit}|||||F")
    return ("\r".join(lines) + "\r").encode()


def msa(ack: str) -> str:
    segment = next((line for line in ack.split("\r") if line.startswith("MSA|")), "MSA|??")
    return segment.split("|")[1]


def batch(messages: list[bytes]) -> bytes:
    """Messages as lab middleware sends a run: one HL7 batch (BHS … BTS)."""
    header = f"BHS|^~\\&|BENCH|BENCH_LAB|MHOSPITAL|MH|||||{len(messages)}-{id(messages)}\r".encode()
    return header + b"".join(messages) + f"BTS|{len(messages)}\r".encode()


def post_all(url: str, token: str, bodies: list[bytes], concurrency: int) -> tuple[float, dict[str, int]]:
    local = threading.local()
    codes: dict[str, int] = {}
    lock = threading.Lock()

    def send(body: bytes) -> None:
        if not hasattr(local, "session"):
            local.session = requests.Session()
            local.session.headers.update({"Authorization": f"Device {token}", "Content-Type": CONTENT_TYPE})
        response = local.session.post(url, data=body, timeout=120)
        found = (
            [line.split("|")[1] for line in response.text.split("\r") if line.startswith("MSA|")]
            if response.status_code in (200, 400)
            else [f"HTTP {response.status_code}"]
        )
        with lock:
            for code in found:
                codes[code] = codes.get(code, 0) + 1

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(send, bodies))
    return time.perf_counter() - started, codes


class AlertSocket:
    """The notification socket of a clinician of the bench hospital, as a browser tab holds it."""

    def __init__(self, base: str, cookie: str) -> None:
        from websockets.sync.client import connect

        self.socket = connect(
            base.replace("http://", "ws://") + "/ws/notifications/",
            additional_headers={"Cookie": cookie, "Origin": base},
            open_timeout=10,
        )
        self.alerts: list[float] = []
        self.arrived = threading.Condition()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        try:
            for text in self.socket:
                if json.loads(text).get("kind") == "lab_alert":
                    with self.arrived:
                        self.alerts.append(time.perf_counter())
                        self.arrived.notify_all()
        except Exception:  # noqa: BLE001, S110 - the socket closes at the end of the run
            pass

    def wait(self, count: int, timeout: float) -> float | None:
        with self.arrived:
            self.arrived.wait_for(lambda: len(self.alerts) >= count, timeout=timeout)
            return self.alerts[count - 1] if len(self.alerts) >= count else None

    def close(self) -> None:
        self.socket.close()


def critical_latencies(
    url: str,
    token: str,
    record: str,
    socket: AlertSocket,
    count: int,
    run: str,
    hours_ago: int,
    stop: threading.Event | None = None,
) -> list[float]:
    """Seconds from the start of each critical troponin's POST to its lab_alert on the socket, one at a time.
    Each is taken at its own second (`hours_ago` apart between series): the same time again would be the
    same result, stored once, and raise no alert."""
    session = requests.Session()
    session.headers.update({"Authorization": f"Device {token}", "Content-Type": CONTENT_TYPE})
    timings = []
    base = datetime.now(UTC) - timedelta(hours=hours_ago)
    for n in range(count):
        if stop is not None and stop.is_set():
            break
        body = oru(f"{run}-{n}", record, base + timedelta(seconds=n), [("10839-9", "Troponin I", "0.45", "ng/mL")])
        expected = len(socket.alerts) + 1
        started = time.perf_counter()
        session.post(url, data=body, timeout=60)
        arrived = socket.wait(expected, timeout=30)
        timings.append((arrived - started) if arrived else float("inf"))
    return timings


def cpu_now() -> dict[str, float]:
    """CPU seconds so far of the web server, the worker (their pids from hl7_bench.sh) and the database's
    backends serving this database: where the machine's time goes, whatever else runs beside the bench."""
    from django.db import connection

    backends: list[int] = []
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
            backends = [pid for (pid,) in cursor.fetchall()]
    cpu = proc_cpu.snapshot()
    return {
        "server": cpu.of(roots=[int(pid) for pid in os.environ.get("SERVER_PIDS", "").split()]),
        "worker": cpu.of(roots=[int(pid) for pid in os.environ.get("WORKER_PIDS", "").split()]),
        "postgresql": cpu.of(roots=backends),
    }


def summary(timings: list[float]) -> dict[str, float]:
    if not timings:
        return {}
    ordered = sorted(timings)
    return {
        "n": len(ordered),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[max(0, round(0.95 * len(ordered)) - 1)] * 1000, 1),
        "max_ms": round(ordered[-1] * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", default="http://127.0.0.1:8076")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--results", type=int, default=5, help="OBX per message")
    parser.add_argument("--batch", type=int, default=1, help="messages per request (an HL7 batch when over 1)")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--critical", type=int, default=50, help="critical messages timed, idle, one at a time")
    args = parser.parse_args()

    seed = setup(args.patients)
    from django.db.models import Count

    from diagnostics.models import LabMessage

    url = f"{args.base}/api/v1/device/hl7"
    run = f"B{int(time.time())}"
    base = datetime.now(UTC) - timedelta(days=1)
    analytes = (ANALYTES * 2)[: args.results]
    bodies = [
        oru(f"{run}-M-{n}", seed["records"][n % len(seed["records"])], base + timedelta(seconds=n), analytes)
        for n in range(args.messages)
    ]
    if args.batch > 1:
        bodies = [batch(bodies[n : n + args.batch]) for n in range(0, len(bodies), args.batch)]
    socket = AlertSocket(args.base, seed["cookie"])
    observations = args.messages * len(analytes)
    print(
        f"{args.messages} ORU^R01 messages, {observations} observations, {len(bodies)} requests, "
        f"{args.concurrency} clients"
    )

    # Warm up every server process and the worker outside the timed part.
    post_all(url, seed["token"], [oru(f"{run}-warm-{n}", seed["records"][0], base, analytes[:1]) for n in range(20)], 4)

    under_load: list[float] = []
    stop = threading.Event()
    prober = threading.Thread(
        target=lambda: under_load.extend(
            critical_latencies(url, seed["token"], seed["critical_record"], socket, args.critical, f"{run}-L", 3, stop)
        ),
        daemon=True,
    )
    cpu_before = cpu_now()
    started = time.perf_counter()
    prober.start()
    accepted_s, codes = post_all(url, seed["token"], bodies, args.concurrency)
    ours = LabMessage.objects.filter(control_id__startswith=f"{run}-M-")
    deadline = time.perf_counter() + 3600
    while ours.filter(status=LabMessage.Status.QUEUED).exists() or ours.count() < args.messages:
        if time.perf_counter() > deadline:
            raise SystemExit("not all messages stored after an hour")
        time.sleep(0.1)
    stored_s = time.perf_counter() - started
    cpu_after = cpu_now()
    cpu = {part: round(cpu_after[part] - cpu_before[part], 2) for part in cpu_after}
    stop.set()
    prober.join(timeout=60)
    idle = critical_latencies(url, seed["token"], seed["critical_record"], socket, args.critical, f"{run}-I", 2)
    socket.close()
    statuses = dict(ours.order_by().values_list("status").annotate(n=Count("pk")))
    results = {
        "messages": args.messages,
        "observations": observations,
        "acks": codes,
        "accept_s": round(accepted_s, 2),
        "accepted_messages_per_s": round(args.messages / accepted_s, 1),
        "stored_s": round(stored_s, 2),
        "observations_per_s_end_to_end": round(observations / stored_s, 1),
        "message_statuses": statuses,
        # CPU seconds each part used during the load (PostgreSQL: backends alive at the end), the CPU time an
        # observation costs in all, and what the machine's cores would carry at that cost with nothing else.
        "cpu_s": cpu,
        "cpu_ms_per_observation": round(1000 * sum(cpu.values()) / observations, 3),
        "observations_per_s_on_all_cores": round((os.cpu_count() or 1) * observations / max(sum(cpu.values()), 1e-9)),
        "load_average": [round(load, 1) for load in os.getloadavg()],
        "critical_alert_latency_under_load": summary(under_load),
        "critical_alert_latency_idle": summary(idle),
    }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
