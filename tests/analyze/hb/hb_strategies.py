"""Hypothesis strategies for small programs and their well-formed schedules.

A program is a main unit ``t0`` plus a few workers. Each worker runs a list of
actions: plain accesses, locked blocks (acquire, accesses, release), sends and
receives on a queue ``q`` (FIFO, messages have ids) and an event ``ev`` (no message:
a receive needs one earlier send). Main writes some variables, forks the workers,
does a few accesses, joins some workers and accesses again. A random scheduler
interleaves the units, honouring locks, joins and receives, so every trace is one
that a real run could have recorded.
"""

from __future__ import annotations

import random
from typing import Any

from hypothesis import strategies as st

VARS = ("x", "y", "z")
LOCKS = ("L1", "L2")

access = st.tuples(st.sampled_from(["read", "write"]), st.sampled_from(VARS))
locked = st.tuples(st.just("locked"), st.sampled_from(LOCKS), st.lists(access, max_size=3))
handoff = st.tuples(st.sampled_from(["send_q", "recv_q", "send_ev", "recv_ev"]))
action = st.one_of(access, access, locked, handoff)


@st.composite
def programs(draw: Any) -> dict[str, Any]:
    n = draw(st.integers(1, 3))
    workers = {f"t{i}": draw(st.lists(action, max_size=6)) for i in range(1, n + 1)}
    return {
        "init": draw(st.lists(access, max_size=2)),
        "workers": workers,
        "middle": draw(st.lists(access, max_size=2)),
        "joins": draw(st.lists(st.sampled_from(sorted(workers)), unique=True)),
        "after": draw(st.lists(access, max_size=2)),
        "seed": draw(st.integers(0, 2**32 - 1)),
    }


def _expand(actions: list[Any]) -> list[tuple[str, str]]:
    steps: list[tuple[str, str]] = []
    for a in actions:
        if a[0] == "locked":
            steps.append(("acquire", a[1]))
            steps += list(a[2])
            steps.append(("release", a[1]))
        elif a[0] in ("send_q", "recv_q", "send_ev", "recv_ev"):
            op, obj = a[0].split("_")
            steps.append((op, obj))
        else:
            steps.append(a)
    return steps


def schedule(prog: dict[str, Any]) -> list[tuple[Any, ...]]:
    """One interleaving of the program, as steps for ``hb_trace.frame``."""
    rnd = random.Random(prog["seed"])
    plans: dict[str, list[tuple[str, str]]] = {
        "t0": [
            *prog["init"],
            *[("fork", w) for w in prog["workers"]],
            *prog["middle"],
            *[("join", w) for w in prog["joins"]],
            *prog["after"],
        ]
    }
    for w, acts in prog["workers"].items():
        plans[w] = _expand(acts)
    started = {"t0"}
    done: set[str] = set()
    holder: dict[str, str] = {}
    queue: list[int] = []
    ev_sent = False
    msg = 0
    out: list[tuple[Any, ...]] = []

    def runnable(u: str) -> bool:
        if u not in started or u in done:
            return False
        if not plans[u]:
            return True  # will end
        op, obj = plans[u][0]
        if op == "acquire":
            return obj not in holder
        if op == "join":
            return obj in done
        if op == "recv":
            return bool(queue) if obj == "q" else ev_sent
        return True

    while True:
        ready = [u for u in sorted(plans) if runnable(u)]
        if not ready:
            break  # finished, or every remaining unit waits for something never coming
        u = rnd.choice(ready)
        if not plans[u]:
            done.add(u)
            if u != "t0":
                out.append((u, "end", u))
            continue
        op, obj = plans[u].pop(0)
        extra: dict[str, Any] = {}
        if op == "fork":
            started.add(obj)
        elif op == "acquire":
            holder[obj] = u
        elif op == "release":
            holder.pop(obj, None)
        elif op == "send" and obj == "q":
            msg += 1
            queue.append(msg)
            extra["msg"] = msg
        elif op == "send":
            ev_sent = True
        elif op == "recv" and obj == "q":
            extra["msg"] = queue.pop(0)
        out.append((u, op, obj, extra) if extra else (u, op, obj))
    return out
