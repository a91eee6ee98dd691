"""The controlled scheduler (``tracelens.record.schedule``) run in a child process."""

from __future__ import annotations

import time
from pathlib import Path

from tests.reproduce.programs import ARTICLE_LOCKED, ARTICLE_RACY, ASYNC_LOST, LOCK_ORDER, site
from tracelens.testing import Hold, Plan, Point, run_scheduled

WEIGHT = "model['weight']"
HITS = "stats['hits']"
#: ``transfer`` held with its first lock until ``report`` took its own first lock.
LOCK_ORDER_PLAN = Plan(
    holds=(
        Hold(
            Point("acquire", site=site(LOCK_ORDER, "with accounts:")),
            Point("acquire", site=site(LOCK_ORDER, "with first:")),
        ),
    ),
    timeout=10.0,
)


def _lost_update(path: Path, var: str, read: str, write: str) -> Plan:
    return Plan(
        holds=(Hold(Point("read", var, site(path, read)), Point("write", var, site(path, write))),)
    )


def test_article_lost_update_is_forced(tmp_path: Path) -> None:
    """Holding a worker after its read until another worker wrote loses updates."""
    plan = _lost_update(ARTICLE_RACY, WEIGHT, 'model["weight"] +=', 'model["weight"] +=')
    run = run_scheduled([str(ARTICLE_RACY)], plan, cwd=tmp_path)
    assert run.status == 0, run.stderr
    assert run.forced, run.result
    assert "weight = 1001.0" not in run.stdout


def test_serial_run_gives_the_serial_result(tmp_path: Path) -> None:
    """A serial run of the racy article program loses nothing."""
    run = run_scheduled([str(ARTICLE_RACY)], Plan(serial=True), cwd=tmp_path)
    assert run.stdout.startswith("weight = 1001.0"), run.stdout + run.stderr


def test_lock_fix_is_ordered_by_the_lock(tmp_path: Path) -> None:
    """With the lock the hold cannot be forced, says so, and the result stays right."""
    plan = _lost_update(ARTICLE_LOCKED, WEIGHT, 'model["weight"] +=', 'model["weight"] +=')
    run = run_scheduled([str(ARTICLE_LOCKED)], plan, cwd=tmp_path)
    (hold,) = run.result["holds"]
    assert hold["status"] == "not_forced"
    assert "ordered by the lock" in hold["why"]
    assert run.stdout.startswith("weight = 1001.0")


def test_lock_order_inversion_deadlocks_within_the_timeout(tmp_path: Path) -> None:
    """Holding a unit with its first lock until the other took its own deadlocks them both."""
    plan = LOCK_ORDER_PLAN
    t0 = time.monotonic()
    run = run_scheduled([str(LOCK_ORDER)], plan, cwd=tmp_path)
    assert time.monotonic() - t0 < 10.0
    assert run.deadlocked, run.result
    stacks = {u["unit"]: u["stack"] for u in run.result["ended"]["units"]}
    assert set(stacks) == {"transfer", "report"}
    assert "in transfer" in stacks["transfer"] and "in report" in stacks["report"]


def test_lock_order_fix_finishes(tmp_path: Path) -> None:
    """With one lock order the same hold is ordered by the lock and the run finishes."""
    plan = LOCK_ORDER_PLAN
    run = run_scheduled([str(LOCK_ORDER), "--fixed"], plan, cwd=tmp_path)
    assert run.how == "finished" and run.status == 0
    assert "ordered by the lock" in run.result["holds"][0]["why"]


def test_asyncio_lost_update_is_forced(tmp_path: Path) -> None:
    """A task held after its read until another task wrote loses that task's update."""
    plan = Plan(
        holds=(
            Hold(
                Point("read", HITS, site(ASYNC_LOST, 'hits = stats["hits"]', 2)),
                Point("write", HITS, site(ASYNC_LOST, 'stats["hits"] = hits + 1', 2)),
            ),
        )
    )
    run = run_scheduled([str(ASYNC_LOST)], plan, cwd=tmp_path)
    assert run.forced, run.result
    assert "hits = 5" not in run.stdout


def test_asyncio_lock_fix_is_ordered_by_the_lock(tmp_path: Path) -> None:
    """Under an asyncio.Lock the held task's lock orders the other task after it."""
    plan = Plan(
        holds=(
            Hold(
                Point("read", HITS, site(ASYNC_LOST, 'hits = stats["hits"]', 1)),
                Point("write", HITS, site(ASYNC_LOST, 'stats["hits"] = hits + 1', 1)),
            ),
        )
    )
    run = run_scheduled([str(ASYNC_LOST), "--fixed"], plan, cwd=tmp_path)
    assert "ordered by the lock" in run.result["holds"][0]["why"], run.result
    assert run.stdout.startswith("hits = 5")


def test_unit_name_picks_the_held_unit(tmp_path: Path) -> None:
    """A point with a unit name holds that unit, not the first to arrive."""
    at = Point("read", WEIGHT, site(ARTICLE_RACY, 'model["weight"] +='), unit="worker-7")
    plan = Plan(holds=(Hold(at, Point("write", WEIGHT)),))
    run = run_scheduled([str(ARTICLE_RACY)], plan, cwd=tmp_path)
    assert run.result["holds"][0]["unit"] == "worker-7"


def test_a_site_never_reached_is_said(tmp_path: Path) -> None:
    """A hold whose site the program never reaches is reported as not reached."""
    plan = Plan(holds=(Hold(Point("read", site="article_racy.py:1"), Point("write")),))
    run = run_scheduled([str(ARTICLE_RACY)], plan, cwd=tmp_path)
    hold = run.result["holds"][0]
    assert hold["status"] == "not_reached" and "no unit reached" in hold["why"]
