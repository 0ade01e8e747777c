"""The functions with the largest share of a py-spy profile (`py-spy record --format raw`): inclusive (the
function and what it calls) and self.

    python bench/profile_top.py var/bench-profile.txt [how many]
"""

import sys
from collections import Counter


def frame_name(frame: str) -> str:
    """`name (path/to/file.py:line)` as `name (file.py)`: one entry per function, whatever the line."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0].rsplit('/', 1)[-1]})" if where else name


def main() -> None:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    with open(sys.argv[1], encoding="utf-8") as samples:
        for line in samples:
            stack, _, weight = line.rstrip("\n").rpartition(" ")
            names = [frame_name(frame) for frame in stack.split(";")]
            total += int(weight)
            own[names[-1]] += int(weight)
            for name in set(names):
                inclusive[name] += int(weight)
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    print(f"{total} samples")
    for title, counts in (("inclusive", inclusive), ("self", own)):
        print(f"\n{title}:")
        for name, count in counts.most_common(top):
            print(f"{100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
