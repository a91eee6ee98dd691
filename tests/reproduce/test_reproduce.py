"""``tracelens reproduce``: the acceptance programs, forced from their recorded findings."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from tests.reproduce.programs import (
    ARTICLE_LOCKED,
    ARTICLE_RACY,
    ASYNC_LOST,
    CHECK_THEN_ACT,
    LOCK_ORDER,
    POOL_COUNTER,
    PUBLISH,
    record,
    reproduce_cli,
    site,
    tracelens_cli,
)
from tracelens.analyze import analyze, load
from tracelens.reproduce import plans, select
from tracelens.testing import Hold, Plan, Point, run_scheduled


def _app(tmp_path: Path, source: Path) -> Path:
    app = tmp_path / "app.py"
    shutil.copyfile(source, app)
    return app


def _finding(trace: Path, kind: str) -> str:
    found = [f for f in analyze(load(trace)).findings if f.kind == kind]
    assert found, f"no {kind} in {trace}"
    return found[0].fingerprint


def test_article_lost_update_is_reproduced(tmp_path: Path) -> None:
    """The article's lost update makes the final weight wrong and says by how much."""
    trace = record(ARTICLE_RACY, tmp_path / "racy.jsonl")
    status, out, err = reproduce_cli(
        trace,
        _finding(trace, "lost_update"),
        "--",
        str(ARTICLE_RACY),
        cwd=tmp_path,
    )
    assert status == 1, out + err
    assert "reproduced" in out and "instead of 1001.0, off by -" in out
    assert (tmp_path / "racy.reproduce.jsonl").exists()


def test_article_plan_is_wrong_ten_times_of_ten(tmp_path: Path) -> None:
    """The plan built from the article's lost update makes the weight wrong in 10 of 10 runs."""
    trace = record(ARTICLE_RACY, tmp_path / "racy.jsonl")
    loaded = load(trace)
    _, f = select(analyze(loaded).findings, _finding(trace, "lost_update"))
    plan = plans(f, loaded.events.collect(), attempts=1)[0]
    outputs = [run_scheduled([str(ARTICLE_RACY)], plan, cwd=tmp_path).stdout for _ in range(10)]
    assert all(o.startswith("weight = ") and "weight = 1001.0" not in o for o in outputs), outputs


def test_article_lock_fix_is_ordered_by_the_lock(tmp_path: Path) -> None:
    """After the lock fix the racy run's finding cannot be forced: ordered by the lock."""
    app = _app(tmp_path, ARTICLE_RACY)
    trace = record(app, tmp_path / "racy.jsonl")
    shutil.copyfile(ARTICLE_LOCKED, app)  # the fix, in place: its lines moved
    status, out, err = reproduce_cli(
        trace,
        _finding(trace, "lost_update"),
        "--",
        str(app),
        cwd=tmp_path,
    )
    assert status == 0, out + err
    assert "not reproduced" in out and "ordered by the lock" in out


def test_pool_counter_loses_an_update_it_did_not_lose_when_recorded(tmp_path: Path) -> None:
    """A data race predicted by happens-before only is made to lose an update."""
    trace = record(POOL_COUNTER, tmp_path / "pool.jsonl")
    found = analyze(load(trace)).findings
    assert not any(f.kind == "lost_update" for f in found)
    # Happens-before predicts it; whether it says data_race or inconsistent_locking
    # depends on which hand-offs of the pool the run happened to record.
    races = [f for f in found if f.kind in ("data_race", "inconsistent_locking")]
    assert races
    status, out, err = reproduce_cli(
        trace,
        races[0].fingerprint,
        "--",
        str(POOL_COUNTER),
        cwd=tmp_path,
    )
    assert status == 1, out + err
    assert "lost" in out and "instead of 24" in out


def test_lock_order_inversion_deadlocks_with_both_stacks(tmp_path: Path) -> None:
    """A lock-order inversion that finished when recorded deadlocks, with both stacks, in time."""
    trace = record(LOCK_ORDER, tmp_path / "lo.jsonl")
    t0 = time.monotonic()
    status, out, err = reproduce_cli(
        trace,
        "1",
        "--timeout",
        "8",
        "--",
        str(LOCK_ORDER),
        cwd=tmp_path,
    )
    assert status == 1, out + err
    assert time.monotonic() - t0 < 8 * 3  # two serial runs and the forced one, each bounded
    assert "deadlocked" in out
    assert "stack of transfer" in out and "in transfer" in out
    assert "stack of report" in out and "in report" in out


def test_lock_order_fix_is_not_reproduced(tmp_path: Path) -> None:
    """With one lock order the inversion cannot be forced and the program finishes."""
    trace = record(LOCK_ORDER, tmp_path / "lo.jsonl")
    status, out, err = reproduce_cli(trace, "1", "--", str(LOCK_ORDER), "--fixed", cwd=tmp_path)
    assert status == 0, out + err
    assert "ordered by the lock" in out


def test_asyncio_lost_update_is_reproduced(tmp_path: Path) -> None:
    """The asyncio read-await-write loses updates when forced."""
    trace = record(ASYNC_LOST, tmp_path / "a.jsonl")
    status, out, err = reproduce_cli(
        trace,
        _finding(trace, "lost_update"),
        "--",
        str(ASYNC_LOST),
        cwd=tmp_path,
    )
    assert status == 1, out + err
    assert "instead of 5" in out


def test_asyncio_lock_fix_is_not_reproduced(tmp_path: Path) -> None:
    """Under its asyncio.Lock the same finding cannot be forced: ordered by the lock."""
    trace = record(ASYNC_LOST, tmp_path / "a.jsonl")
    status, out, err = reproduce_cli(
        trace,
        _finding(trace, "lost_update"),
        "--",
        str(ASYNC_LOST),
        "--fixed",
        cwd=tmp_path,
    )
    assert status == 0, out + err
    assert "ordered by the lock" in out


def test_a_group_id_selects_the_finding(tmp_path: Path) -> None:
    """The group id the report prints names a finding to reproduce."""
    trace = record(ARTICLE_RACY, tmp_path / "racy.jsonl")
    group = analyze(load(trace)).findings[0].group
    status, out, _ = reproduce_cli(trace, group, "--", str(ARTICLE_RACY), cwd=tmp_path)
    assert status == 1 and group in out


@pytest.mark.parametrize(
    ("finding", "command", "message"),
    [
        ("99", ["app.py"], "no finding 99"),
        ("zzzzzzzz", ["app.py"], "no finding 'zzzzzzzz'"),
        ("1", ["missing.py"], "could not run"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, finding: str, command: list[str], message: str
) -> None:
    """A bad finding id or a program that cannot run is one line on stderr and exit 2."""
    _app(tmp_path, LOCK_ORDER)
    trace = record(tmp_path / "app.py", tmp_path / "lo.jsonl")
    status, _, err = reproduce_cli(trace, finding, "--", *command, cwd=tmp_path)
    assert status == 2
    assert message in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_missing_trace_is_exit_2(tmp_path: Path) -> None:
    """A trace that does not exist is one line on stderr and exit 2."""
    status, _, err = tracelens_cli(
        "reproduce", "none.jsonl", "--finding", "1", "--", "app.py", cwd=tmp_path
    )
    assert status == 2 and err.startswith("tracelens: error:") and "Traceback" not in err


def test_data_race_is_forced_in_the_opposite_order(tmp_path: Path) -> None:
    """A write-then-read race is forced the other way round: the reader sees the old value."""
    trace = record(PUBLISH, tmp_path / "pub.jsonl")
    status, out, err = reproduce_cli(
        trace,
        _finding(trace, "data_race"),
        "--",
        str(PUBLISH),
        cwd=tmp_path,
    )
    assert status == 1, out + err
    assert "'serve saw mode default' instead of 'serve saw mode production'" in out


def test_data_race_ordered_by_an_event_is_not_reproduced(tmp_path: Path) -> None:
    """When the reader waits for an Event the writer sets, the order cannot be reversed."""
    trace = record(PUBLISH, tmp_path / "pub.jsonl")
    status, out, err = reproduce_cli(
        trace,
        _finding(trace, "data_race"),
        "--",
        str(PUBLISH),
        "--fixed",
        cwd=tmp_path,
    )
    assert status == 0, out + err
    assert "could not be forced" in out and "serve waits for Event" in out


def _violation_trace(tmp_path: Path) -> Path:
    """A trace of the check-then-act program with the remote write inside the region
    (recorded by forcing it: the program's own runs seldom show it)."""
    balance = "account['balance']"
    plan = Plan(
        holds=(
            Hold(
                Point("read", balance, site(CHECK_THEN_ACT, 'if account["balance"] >= 80')),
                Point("write", balance, site(CHECK_THEN_ACT, 'account["balance"] -= account')),
            ),
        )
    )
    trace = tmp_path / "cta.jsonl"
    run_scheduled([str(CHECK_THEN_ACT)], plan, trace=trace, cwd=tmp_path)
    return trace


def test_atomicity_violation_is_forced_inside_the_region(tmp_path: Path) -> None:
    """The remote write is forced inside the region: the withdrawal overdraws."""
    trace = _violation_trace(tmp_path)
    status, out, err = reproduce_cli(
        trace,
        _finding(trace, "atomicity_violation"),
        "--",
        str(CHECK_THEN_ACT),
        cwd=tmp_path,
    )
    assert status == 1, out + err
    assert "'balance = -80' instead of 'balance = 0'" in out


def test_atomicity_violation_under_a_lock_is_not_reproduced(tmp_path: Path) -> None:
    """With the region under a lock the remote write cannot come inside it."""
    trace = _violation_trace(tmp_path)
    status, out, err = reproduce_cli(
        trace,
        _finding(trace, "atomicity_violation"),
        "--",
        str(CHECK_THEN_ACT),
        "--fixed",
        cwd=tmp_path,
    )
    assert status == 0, out + err
    assert "ordered by the lock" in out
