"""Summarizes py-spy raw (collapsed) stacks: the inclusive and self shares of the top frames.

    python3 bench/profiles/summarize.py PROFILE.raw [TOP]

Samples whose innermost frame is a wait (a thread blocked on a condition, its pool's
queue, gRPC's completion queue or a selector) are left out: the shares are of the
samples that do or wait for work (a thread waiting for the GIL or a lock inside a
call shows as that call).
"""

from __future__ import annotations

import re
import sys
from collections import Counter

WAITS = (
    "Condition.wait",
    "_worker (",
    "Event.wait",
    "Lock.acquire",
    "_serve (",
    "_wait_once",
    "_PollLikeSelector.select",
    "select (",
    "poll (",
    "epoll_wait",
)


def _name(frame: str) -> str:
    """``func (path/file.py:line)`` as ``func (package/file.py)``."""
    frame = re.sub(r":\d+\)$", ")", frame)
    return re.sub(r"\(/.*?/(site-packages|service|lib/python3\.\d+)/", "(", frame)


def main() -> None:
    path = sys.argv[1]
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    with open(path) as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            n = int(count)
            # thread and process labels are not frames
            frames = [
                _name(f)
                for f in stack.split(";")
                if not f.startswith(("thread (", "process ")) and len(f) < 200
            ]
            if not frames or frames[-1].startswith(WAITS) or "sleep" in frames[-1]:
                continue
            total += n
            for f in set(frames):
                inclusive[f] += n
            own[frames[-1]] += n
    print(f"samples (waits left out): {total}")
    print("inclusive:")
    for f, n in inclusive.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {f}")
    print("self:")
    for f, n in own.most_common(top):
        print(f"  {100 * n / total:5.1f}%  {f}")


if __name__ == "__main__":
    main()
