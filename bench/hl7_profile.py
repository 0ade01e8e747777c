"""Where an HL7 ORU^R01 spends its time in-process: the request (the Django stack, DRF, the endpoint) and
the worker's drain, each timed and profiled with cProfile, without a web server or a broker in between.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/mhospital_bench \\
      .venv/bin/python bench/hl7_profile.py --messages 1000 --batch 50 --top 25

Seeds as bench/hl7_bench.py does, posts the messages through Django's test client (every middleware, DRF,
the device token), then drains the queue as the Celery task does. Prints ms per message for each part and
cProfile's heaviest functions (cumulative) for each.
"""

import argparse
import cProfile
import io
import pstats
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import hl7_bench  # the same seed and messages as the end-to-end bench


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--results", type=int, default=5)
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--bare", action="store_true", help="time only, without cProfile")
    parser.add_argument("--drain-batch", type=int, default=0, help="messages per drain transaction (default: as set)")
    args = parser.parse_args()

    seed = hl7_bench.setup(50)
    from django.test import Client

    from devices import results
    from diagnostics.models import LabMessage

    run = f"P{int(time.time())}"
    base = datetime.now(UTC) - timedelta(days=3)
    analytes = (hl7_bench.ANALYTES * 2)[: args.results]
    bodies = [
        hl7_bench.oru(f"{run}-{n}", seed["records"][n % len(seed["records"])], base + timedelta(seconds=n), analytes)
        for n in range(args.messages)
    ]
    if args.batch > 1:
        bodies = [hl7_bench.batch(bodies[n : n + args.batch]) for n in range(0, len(bodies), args.batch)]
    client = Client(HTTP_AUTHORIZATION=f"Device {seed['token']}")
    client.post("/api/v1/device/hl7", hl7_bench.oru(f"{run}-warm", seed["records"][0], base, analytes[:1]),
                content_type=hl7_bench.CONTENT_TYPE)  # fmt: skip
    results.hl7_messages_drain()

    def accept() -> None:
        for body in bodies:
            response = client.post("/api/v1/device/hl7", body, content_type=hl7_bench.CONTENT_TYPE)
            assert response.status_code == 200, response.content[:300]

    def drain() -> None:
        while results.hl7_messages_drain(limit=args.drain_batch or results.DRAIN_BATCH):
            pass

    for name, work in (("accept (request)", accept), ("drain (worker)", drain)):
        profile = cProfile.Profile()
        started, cpu = time.perf_counter(), time.process_time()
        if not args.bare:
            profile.enable()
        work()
        profile.disable()
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        print(
            f"\n== {name}: {elapsed:.2f} s for {args.messages} messages, {1000 * elapsed / args.messages:.2f} ms per "
            f"message ({1000 * cpu / args.messages:.2f} ms of this process's CPU), "
            f"{args.messages * len(analytes) / elapsed:.0f} obs/s{'' if args.bare else ' (profiled)'}"
        )
        if args.bare:
            continue
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(args.top)
        print(out.getvalue()[-12000:])
    left = LabMessage.objects.filter(control_id__startswith=run, status=LabMessage.Status.QUEUED).count()
    print(f"queued left: {left}")


if __name__ == "__main__":
    main()
