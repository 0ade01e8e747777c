"""The server's CPU per request, outside the STOW view and with it: one uvicorn process, one request at a time.

    bash bench/request_cost.sh            # starts the server, runs this, stops it
    OTHER=/path/to/checkout bash bench/request_cost.sh   # and a second server from that checkout, alternating

Three kinds of request to POST /dicom-web/studies with an API token, in turns, each kind REPEAT times a round:
refused at once for its media type with a 100-byte body (the fixed cost: uvicorn, Django's ASGI handler,
the middleware, DRF, the token and the user's membership), refused the same way with the 3 MB body of ten
images (the same plus receiving the body), and stored (a STOW-RS request of ten new images). The CPU is the
server process's own, from /proc, and PostgreSQL's beside it: one request at a time, so its backends' CPU is
the request's, but the background writer and checkpointer count too and move it by a millisecond or two from
run to run. 127.0.0.1 only; a fixed number of requests; stops by itself.
"""

import argparse
import io
import statistics

import proc_cpu  # bench/, beside this script
import requests
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from stow_bench import DATABASE, corpus

from diagnostics.dicomweb.multipart import multipart_write

BOUNDARY = "request-cost-boundary"


def bodies(count: int, patient_id: str) -> list[bytes]:
    """STOW-RS bodies of ten new instances each (multipart/related, one DICOM file a part)."""
    datasets = corpus(count, patient_id, 20)
    return [
        b"".join(multipart_write([("application/dicom", [_file(d)]) for d in datasets[i : i + 10]], BOUNDARY))
        for i in range(0, count, 10)
    ]


def _file(dataset: Dataset) -> bytes:
    buffer = io.BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, action="append", help="twice to compare two servers, alternating")
    parser.add_argument("--pid", type=int, required=True, action="append", help="each server's uvicorn process")
    parser.add_argument("--label", action="append", help="each server's name in the results")
    parser.add_argument("--token", required=True)
    parser.add_argument("--patient-id", required=True)
    parser.add_argument("--repeat", type=int, default=60, help="requests of each kind per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    labels = args.label or [f"server {n}" for n in range(1, len(args.url) + 1)]
    servers = list(zip(labels, args.url, args.pid, strict=True))
    session = requests.Session()
    session.headers["Authorization"] = f"Token {args.token}"
    stow_type = f'multipart/related; type="application/dicom"; boundary={BOUNDARY}'
    big = bodies(10, args.patient_id)[0]
    kinds = ("refused, 100 bytes", "refused, 10 images", "stored, 10 images")
    costs: dict[tuple[str, str], list[float]] = {(label, kind): [] for label, _u, _p in servers for kind in kinds}
    database: dict[tuple[str, str], list[float]] = {key: [] for key in costs}  # one request at a time: theirs
    for round_ in range(args.rounds):
        for label, url, pid in servers if round_ % 2 == 0 else servers[::-1]:  # neither always goes first
            stored = bodies(10 * args.repeat, args.patient_id)  # new UIDs each time
            for kind, content_type, sent in (
                (kinds[0], "text/plain", [b"x" * 100] * args.repeat),
                (kinds[1], "text/plain", [big] * args.repeat),
                (kinds[2], stow_type, stored),
            ):
                before = proc_cpu.snapshot()
                for body in sent:
                    answer = session.post(f"{url}/dicom-web/studies", data=body, headers={"Content-Type": content_type})
                    assert answer.status_code == (200 if kind.startswith("stored") else 415), answer.text[:300]
                after = proc_cpu.snapshot()
                costs[label, kind].append((after.of(roots=[pid]) - before.of(roots=[pid])) * 1000 / len(sent))
                database[label, kind].append(
                    (after.of(patterns=[DATABASE]) - before.of(patterns=[DATABASE])) * 1000 / len(sent)
                )
    print(
        f"a body of ten images: {len(big) / 2**20:.2f} MB; /proc counts CPU in 10 ms ticks: ±{10 / args.repeat:.2f} ms"
    )
    for (label, kind), figures in costs.items():
        name = f"{label}: " if len(servers) > 1 else ""
        print(
            f"{name}{kind}: median {_figures(figures)} of server CPU per request; "
            f"PostgreSQL {_figures(database[label, kind])}"
        )


def _figures(figures: list[float]) -> str:
    """The median in milliseconds, then each round's figure."""
    return f"{statistics.median(figures):.2f} ms ({', '.join(f'{figure:.2f}' for figure in figures)})"


if __name__ == "__main__":
    main()
