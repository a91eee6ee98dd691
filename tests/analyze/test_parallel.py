"""analyze() runs its analyses side by side on small traces, one after another on big ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from tracelens.analyze import Options, analyze, load, parallel, windows

SAMPLES = Path(__file__).parents[2] / "sample_logs"


@pytest.mark.parametrize("name", ["article_racy", "condition_buffer"])
def test_side_by_side_and_one_after_another_give_the_same_report(name, monkeypatch):
    """A sample analysed side by side and one after another gives the same findings and summary."""
    trace = load(SAMPLES / f"{name}.jsonl.gz")
    side_by_side = analyze(trace)
    one_by_one = analyze(trace, options=Options(parallel_max_events=0))

    assert side_by_side.findings == one_by_one.findings
    assert side_by_side.summary == one_by_one.summary


def test_an_analysis_error_reaches_the_caller(monkeypatch):
    """An exception in an analysis thread is raised by analyze(), not lost."""

    def broken(events, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(windows, "run", broken)
    with pytest.raises(RuntimeError, match="boom"):
        analyze(load(SAMPLES / "article_racy.jsonl.gz"))


def test_side_by_side_keeps_the_order_of_the_tasks():
    """The results come back in the order of the tasks, run side by side or one after another."""
    tasks = [lambda i=i: i * i for i in range(5)]

    assert parallel.side_by_side(tasks, parallel=True) == [0, 1, 4, 9, 16]
    assert parallel.side_by_side(tasks, parallel=False) == [0, 1, 4, 9, 16]


def test_side_by_side_raises_the_first_failing_tasks_error_after_all_finished():
    """The first failing task's error is raised only after every other task has run."""
    done = []

    def ok():
        done.append("ok")
        return 1

    def fails(msg):
        raise ValueError(msg)

    tasks = [ok, lambda: fails("second"), lambda: fails("third"), ok]
    with pytest.raises(ValueError, match="second"):
        parallel.side_by_side(tasks, parallel=True)
    assert done == ["ok", "ok"]


def test_jobs_run_in_daemon_threads():
    """The interpreter's exit does not wait for analyses an interrupted command dropped."""
    import threading

    job = parallel.Job(lambda: (threading.current_thread().daemon, threading.get_ident()))
    daemon, ident = job.result()

    assert daemon and ident != threading.get_ident()


def test_a_finished_job_lets_its_inputs_go():
    """A job keeps its result, not the task's closure (which may hold another job's lists)."""
    import gc
    import weakref

    class Big:
        pass

    big = Big()
    ref = weakref.ref(big)
    job = parallel.Job(lambda b=big: 42)
    del big
    assert job.result() == 42
    gc.collect()
    assert ref() is None


@pytest.mark.parametrize("max_events", [0, 10**9])
def test_a_failing_data_race_analysis_reaches_the_caller_without_a_hang(max_events, monkeypatch):
    """The lock-set analysis waits for the data races' sites: a failure there ends both."""
    import threading

    from tracelens.analyze.hb import analysis as predictive

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(predictive, "data_race", broken)
    trace = load(SAMPLES / "article_racy.jsonl.gz")
    outcome: list[BaseException] = []

    def run():
        try:
            analyze(trace, options=Options(parallel_max_events=max_events))
        except RuntimeError as e:
            outcome.append(e)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout=60)

    assert not worker.is_alive()
    assert [str(e) for e in outcome] == ["boom"]


def test_handover_gives_the_value():
    """get() on a handover that was put a value returns that value."""
    given: parallel.Handover[int] = parallel.Handover()
    given.put(7)

    assert given.get() == 7


def test_handover_raises_the_error():
    """get() on a handover that was failed raises the error it was failed with."""
    failed: parallel.Handover[int] = parallel.Handover()
    failed.fail(ValueError("no"))

    with pytest.raises(ValueError, match="no"):
        failed.get()


def test_predictive_hands_out_the_data_races_first(tmp_path):
    """A write-write race gives a part per predictive kind; only the data races have rows."""
    from tests.traces import TraceBuilder
    from tracelens.analyze import hb

    b = TraceBuilder()
    b.write("t1", "x")
    b.write("t2", "x")
    parts = list(hb.run(load(b.write_to(tmp_path / "t.jsonl")).events))

    assert [sorted(set(p["kind"])) for p in parts if p.height] == [["data_race"]]
    assert len(parts) == len(hb.KINDS)


def test_gc_paused_restores_the_collectors_state_after_nested_uses():
    """Nested gc_paused() keeps the collector off inside and restores its on or off state after."""
    import gc

    was = gc.isenabled()
    try:
        for start in (True, False):
            gc.enable() if start else gc.disable()
            with parallel.gc_paused():
                with parallel.gc_paused():
                    assert not gc.isenabled()
                assert not gc.isenabled()
            assert gc.isenabled() == start
    finally:
        gc.enable() if was else gc.disable()


def test_gc_paused_in_overlapping_threads_ends_with_the_collector_on():
    """The collector stays off while another thread's pause is open, and is on once both end."""
    import gc
    import threading

    assert gc.isenabled()
    inside, leave = threading.Event(), threading.Event()

    def hold():
        with parallel.gc_paused():
            inside.set()
            leave.wait(10)

    other = threading.Thread(target=hold)
    other.start()
    inside.wait(10)
    with parallel.gc_paused():
        pass
    assert not gc.isenabled()  # the other thread's pause still runs
    leave.set()
    other.join(10)

    assert gc.isenabled()
