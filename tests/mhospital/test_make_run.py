"""`make run` starts a Celery worker beside the web server: its command line must be one celery accepts."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_worker_command_of_make_run_is_accepted_by_celery() -> None:
    makefile = (ROOT / "Makefile").read_text()
    line = next(line for line in makefile.splitlines() if re.search(r"bin/celery .*worker", line))
    words = shlex.split(line.strip().rstrip("\\").strip().rstrip("&").strip())
    assert words[0].endswith("bin/celery")
    # --help comes last, so every option before it is parsed first and an unknown one fails the command.
    finished = subprocess.run(
        [sys.executable, "-m", "celery", *words[1:], "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert finished.returncode == 0, finished.stderr
    assert "--beat" in words and "worker" in words
