"""Forcing any schedule on a correctly locked program gives the serial result."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracelens.testing import Call, Hold, Plan, Point, run_in_process, run_scheduled

VARS = ("a", "b", "c")

#: One critical section: the (variable, delta) updates it makes under the lock.
sections = st.lists(st.tuples(st.sampled_from(VARS), st.integers(1, 9)), min_size=1, max_size=3)
#: One unit: its critical sections, in order.
units = st.lists(sections, min_size=1, max_size=3)


def _threads_program(work: list[list[list[tuple[str, int]]]]) -> tuple[str, list[str]]:
    """A threaded program whose every update is under one lock, and its update lines."""
    lines = [
        "import threading",
        "lock = threading.Lock()",
        "state = {'a': 0, 'b': 0, 'c': 0}",
    ]
    updates = []
    for i, unit in enumerate(work):
        lines.append(f"def unit{i}():")
        for section in unit:
            lines.append("    with lock:")
            for var, delta in section:
                lines.append(f"        v = state[{var!r}]")
                updates.append(f"{len(lines)}:{var}")
                lines.append(f"        state[{var!r}] = v + {delta}")
        lines.append("    pass")
    names = ", ".join(f"unit{i}" for i in range(len(work)))
    lines.append(f"ts = [threading.Thread(target=f) for f in ({names},)]")
    lines += ["for t in ts: t.start()", "for t in ts: t.join()", "print(sorted(state.items()))"]
    return "\n".join(lines) + "\n", updates


def _asyncio_program(work: list[list[list[tuple[str, int]]]]) -> tuple[str, list[str]]:
    """The same updates as asyncio tasks under one asyncio.Lock, an await inside each."""
    lines = ["import asyncio", "state = {'a': 0, 'b': 0, 'c': 0}"]
    updates = []
    for i, unit in enumerate(work):
        lines.append(f"async def unit{i}(lock):")
        for section in unit:
            lines.append("    async with lock:")
            for var, delta in section:
                lines.append(f"        v = state[{var!r}]")
                updates.append(f"{len(lines)}:{var}")
                lines.append("        await asyncio.sleep(0)")
                lines.append(f"        state[{var!r}] = v + {delta}")
        lines.append("    pass")
    lines += [
        "async def main():",
        "    lock = asyncio.Lock()",
        f"    await asyncio.gather({', '.join(f'unit{i}(lock)' for i in range(len(work)))})",
        "asyncio.run(main())",
        "print(sorted(state.items()))",
    ]
    return "\n".join(lines) + "\n", updates


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    work=st.lists(units, min_size=2, max_size=3),
    tasks=st.booleans(),
    data=st.data(),
)
def test_forced_schedules_of_locked_programs_give_the_serial_result(
    work: list[list[list[tuple[str, int]]]], tasks: bool, data: st.DataObject
) -> None:
    """Any hold on a correctly locked program (threads or tasks) keeps the serial result."""
    source, updates = (_asyncio_program if tasks else _threads_program)(work)
    at_line, at_var = data.draw(st.sampled_from(updates)).split(":")
    until_line, until_var = data.draw(st.sampled_from(updates)).split(":")
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "app.py"
        app.write_text(source, encoding="utf-8")
        plan = Plan(
            holds=(
                Hold(
                    Point("read", f"state[{at_var!r}]", f"app.py:{at_line}"),
                    Point(
                        "write", f"state[{until_var!r}]", f"app.py:{int(until_line) + 1 + tasks}"
                    ),
                ),
            ),
            timeout=10.0,
            wait=1.0,
        )
        serial = run_scheduled([str(app)], Plan(serial=True, timeout=10.0), cwd=tmp)
        forced = run_scheduled([str(app)], plan, cwd=tmp)
    expected = sorted(
        {v: sum(d for u in work for s in u for var, d in s if var == v) for v in VARS}.items()
    )
    assert serial.stdout == f"{expected}\n", serial.stderr
    assert forced.how == "finished" and forced.status == 0, forced.result
    assert forced.stdout == serial.stdout
    # The hold was reached, and under the lock no other unit can write between the held
    # read and its write: it cannot be forced.
    assert [h["status"] for h in forced.result["holds"]] == ["not_forced"], forced.result


def test_the_racy_twin_changes_the_result(tmp_path: Path) -> None:
    """The same kind of program without its lock gives another result under a hold."""
    source, updates = _threads_program([[[("a", 1)]], [[("a", 2)]]])
    app = tmp_path / "app.py"
    app.write_text(source.replace("with lock:", "if True:"), encoding="utf-8")
    line = updates[0].split(":")[0]
    plan = Plan(
        holds=(Hold(Point("read", "state['a']", f"app.py:{line}"), Point("write", "state['a']")),)
    )
    forced = run_scheduled([str(app)], plan, cwd=tmp_path)
    assert forced.forced, forced.result
    assert forced.stdout == "[('a', 1), ('b', 0), ('c', 0)]\n"


def _watched_program(work: list[list[list[tuple[str, int]]]], tasks: bool) -> tuple[str, list[str]]:
    """``_threads_program`` or ``_asyncio_program`` as a module whose ``main()`` runs it on a
    ``watch()``ed dict (what a run in the test's own process can schedule)."""
    source, updates = (_asyncio_program if tasks else _threads_program)(work)
    body = source.replace(
        "state = {'a': 0, 'b': 0, 'c': 0}",
        "state = tracelens.watch({'a': 0, 'b': 0, 'c': 0}, 'state')",
    ).splitlines()
    # Everything after the imports goes into main(): two lines down, four spaces in.
    head, rest = body[:1], body[1:]
    lines = [*head, "import tracelens", "def main():", *("    " + ln for ln in rest)]
    if tasks:
        lines = [ln.replace("    asyncio.run(main())", "    asyncio.run(amain())") for ln in lines]
        lines = [ln.replace("    async def main():", "    async def amain():") for ln in lines]
    shifted = [f"{int(line) + 2}:{var}" for line, var in (u.split(":") for u in updates)]
    return "\n".join(lines) + "\n", shifted


_modules = iter(range(1_000_000))


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    work=st.lists(units, min_size=2, max_size=3),
    tasks=st.booleans(),
    data=st.data(),
)
def test_in_process_forcing_of_locked_code_agrees_with_the_child_and_the_serial_result(
    work: list[list[list[tuple[str, int]]]], tasks: bool, data: st.DataObject
) -> None:
    """In the test's own process, any hold on a correctly locked function keeps its serial
    result and cannot be forced, as the same Call forced in a child (the reference) says."""
    source, updates = _watched_program(work, tasks)
    at_line, at_var = data.draw(st.sampled_from(updates)).split(":")
    until_line, until_var = data.draw(st.sampled_from(updates)).split(":")
    name = f"locked_prog_{next(_modules)}"
    plan = Plan(
        holds=(
            Hold(
                Point("read", f"state[{at_var!r}]", f"{name}.py:{at_line}"),
                Point("write", f"state[{until_var!r}]", f"{name}.py:{int(until_line) + 1 + tasks}"),
            ),
        ),
        timeout=10.0,
        wait=1.0,
    )
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / f"{name}.py").write_text(source, encoding="utf-8")
        call = Call(name, "main", (), tmp)
        serial = run_in_process(call, Plan(serial=True, timeout=10.0))
        forced = run_in_process(call, plan)
        child = run_scheduled(call, plan, cwd=tmp)
    expected = sorted(
        {v: sum(d for u in work for s in u for var, d in s if var == v) for v in VARS}.items()
    )
    assert serial.stdout == f"{expected}\n", serial.stderr
    assert forced.how == "finished" and forced.status == 0, forced.result
    assert forced.stdout == serial.stdout == child.stdout, child.stderr
    statuses = [h["status"] for h in forced.result["holds"]]
    assert statuses == ["not_forced"] == [h["status"] for h in child.result["holds"]]


def test_in_process_the_racy_twin_changes_the_result(tmp_path: Path) -> None:
    """The watched program without its lock, in the test's process: the hold is forced and
    one update is lost."""
    source, updates = _watched_program([[[("a", 1)]], [[("a", 2)]]], tasks=False)
    (tmp_path / "racy_prog.py").write_text(source.replace("with lock:", "if True:"), "utf-8")
    line = updates[0].split(":")[0]
    plan = Plan(
        holds=(
            Hold(Point("read", "state['a']", f"racy_prog.py:{line}"), Point("write", "state['a']")),
        )
    )
    forced = run_in_process(Call("racy_prog", "main", (), str(tmp_path)), plan)
    assert forced.forced, forced.result
    assert forced.stdout == "[('a', 1), ('b', 0), ('c', 0)]\n"
