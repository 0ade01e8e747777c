"""CPU time of the processes under a benchmark, read from Linux /proc: what the servers themselves spend,
which the shared machine's noise changes much less than their rates and latencies.

    cpu = proc_cpu.snapshot()
    cpu.of(roots=[server_pid])                  # a process and its live descendants (uvicorn's workers)
    cpu.of(patterns=["uvicorn mhospital"])      # processes whose command line has one of these, and theirs
"""

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Snapshot:
    parents: dict[int, int]
    commands: dict[int, str]
    seconds: dict[int, float]  # user + system so far

    def of(self, *, roots: Iterable[int] = (), patterns: Iterable[str] = ()) -> float:
        """CPU seconds of the roots, the processes matching a pattern, and all their descendants, once each."""
        patterns = tuple(patterns)
        children: dict[int, list[int]] = {}
        for pid, parent in self.parents.items():
            children.setdefault(parent, []).append(pid)
        todo = [*roots, *(pid for pid, command in self.commands.items() if any(p in command for p in patterns))]
        total, seen = 0.0, set()
        while todo:
            pid = todo.pop()
            if pid in seen or pid not in self.seconds:
                continue
            seen.add(pid)
            total += self.seconds[pid]
            todo.extend(children.get(pid, ()))
        return total


def snapshot() -> Snapshot:
    """Every live process's parent, command line and CPU seconds, in one pass over /proc."""
    parents: dict[int, int] = {}
    commands: dict[int, str] = {}
    seconds: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended meanwhile
            continue
        pid = int(entry.name)
        parents[pid], commands[pid] = int(fields[1]), command
        seconds[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return Snapshot(parents, commands, seconds)
