"""``multiprocessing`` children under ``tracelens run`` are instrumented as the parent is.

A child started by fork, spawn or forkserver, or a ``ProcessPoolExecutor`` worker,
rewrites the same modules (the script, the project, ``--instrument`` patterns) and
records into the same trace. Its variables are its own: the analyzer keys a variable by
process id and name, so a child's dict never races with the parent's dict of the same
name. Each racy program has a fixed twin that must stay quiet.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import read_trace
from tracelens.analyze import analyze, load
from tracelens.record import _config

T = 180

#: Two threads of a child update a dict of the child's module (``{start}`` starts the
#: child, ``{lock}``/``{with_}``/``{ind}`` make the fixed twin). The barrier makes the
#: threads overlap; it orders nothing after it.
CHILD_RACE = """
import multiprocessing as mp
import sys
import threading
{lock}
stats = {{"hits": 0}}
gate = threading.Barrier(2)


def bump():
    gate.wait()
    for _ in range(3000):
        {with_}n = stats["hits"]
        {ind}stats["hits"] = n + 1


def child():
    ts = [threading.Thread(target=bump) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return stats["hits"]


if __name__ == "__main__":
{start}
"""

PROCESS = """
    p = mp.get_context("{method}").Process(target=child)
    p.start()
    p.join()
    sys.exit(p.exitcode)
"""

POOL = """
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        print(pool.submit(child).result())
"""

#: Lines of ``CHILD_RACE``'s read and write of ``stats['hits']``.
SITES = {("app.py", 13), ("app.py", 14)}
RACES = {"data_race", "inconsistent_locking", "lost_update"}


def _program(start: str, *, locked: bool) -> str:
    if not locked:
        return CHILD_RACE.format(lock="", with_="", ind="", start=start)
    return CHILD_RACE.format(
        lock="LOCK = threading.Lock()", with_="with LOCK:\n            ", ind="    ", start=start
    )


def _run(tmp_path: Path, source: str, *, module: bool = False) -> Path:
    (tmp_path / "app.py").write_text(textwrap.dedent(source))
    trace = tmp_path / "app.jsonl"
    target = ["-m", "app"] if module else ["app.py"]
    out = subprocess.run(
        [sys.executable, "-m", "tracelens", "run", "--stress", "-o", str(trace), *target],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=T,
    )
    assert out.returncode == 0, out.stderr
    return trace


def _races(trace: Path, var: str) -> tuple[set[str], set[tuple[str, int]], set[int]]:
    """The kinds of findings on ``var``, their sites and their processes."""
    found = [f for f in analyze(load(trace)).findings if var in f.variables]
    kinds = {f.kind for f in found}
    sites = {(Path(s.file).name, s.line) for f in found for s in f.sites}
    pids = {e.pid for f in found for e in f.events}
    return kinds, sites, pids


def _child_pids(trace: Path) -> set[int]:
    events = read_trace(trace)
    main = next(e["pid"] for e in events if e["event"] == "meta")
    return {e["pid"] for e in events if e["event"] == "begin" and e["pid"] != main}


@pytest.mark.parametrize("method", ["spawn", "forkserver", "fork"])
@pytest.mark.parametrize("locked", [False, True])
def test_a_race_between_threads_of_a_child_is_found_at_its_lines(tmp_path, method, locked):
    """Two threads of a child started by ``method`` race on the child's dict at the child's
    own source lines; with the lock (created when the child runs the script again), quiet."""
    trace = _run(tmp_path, _program(PROCESS.format(method=method), locked=locked))
    kinds, sites, pids = _races(trace, "stats['hits']")
    if locked:
        assert kinds == set()
    else:
        assert kinds & RACES and sites <= SITES and pids <= _child_pids(trace)


@pytest.mark.parametrize("locked", [False, True])
def test_process_pool_workers_are_instrumented(tmp_path, locked):
    """A ``ProcessPoolExecutor`` worker (spawned) runs the script's functions rewritten:
    their race is found at the script's lines; with the lock, quiet."""
    trace = _run(tmp_path, _program(POOL, locked=locked))
    kinds, sites, _ = _races(trace, "stats['hits']")
    if locked:
        assert kinds == set()
    else:
        assert kinds & RACES and sites <= SITES


@pytest.mark.parametrize("locked", [False, True])
def test_a_spawned_child_of_a_dash_m_run_is_instrumented(tmp_path, locked):
    """Under ``tracelens run -m app``, a spawned child runs the module again rewritten: the
    race of its threads is found; with the lock, quiet."""
    source = _program(PROCESS.format(method="spawn"), locked=locked)
    kinds, sites, _ = _races(_run(tmp_path, source, module=True), "stats['hits']")
    if locked:
        assert kinds == set()
    else:
        assert kinds & RACES and sites <= SITES


#: The parent and a forked child update a dict of the same name at the same time; in
#: the racy twin, a second thread of the child updates it too.
SAME_NAME = """
import multiprocessing as mp
import threading

registry = {{"n": 0}}


def update(gate=None):
    if gate is not None:
        gate.wait()  # the child's threads overlap
    for _ in range(2000):
        registry["n"] = registry["n"] + 1


def child():
    gate = threading.Barrier({threads})
    ts = [threading.Thread(target=update, args=(gate,)) for _ in range({threads})]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


if __name__ == "__main__":
    p = mp.get_context("{method}").Process(target=child)
    here = threading.Thread(target=update)
    p.start()
    here.start()
    here.join()
    p.join()
"""


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_a_childs_dict_does_not_race_with_the_parents_dict_of_the_same_name(tmp_path, method):
    """A child's ``registry`` and the parent's are two objects in two processes: updating
    both at once, one thread in each, is no race."""
    trace = _run(tmp_path, SAME_NAME.format(threads=1, method=method))
    events = read_trace(trace)
    pids = {e["pid"] for e in events if e.get("var") == "registry['n']"}
    assert len(pids) == 2  # recorded in both processes, under the same name
    assert _races(trace, "registry['n']")[0] == set()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_two_threads_of_the_child_on_that_dict_still_race(tmp_path, method):
    """The racy twin: with two threads in the child, the child's ``registry`` races, in
    the child's process only."""
    trace = _run(tmp_path, SAME_NAME.format(threads=2, method=method))
    kinds, _, pids = _races(trace, "registry['n']")
    assert kinds & RACES and pids == _child_pids(trace)


WATCHED = """
import multiprocessing as mp
import threading

import tracelens


def update(cache):
    for _ in range(500):
        cache["n"] = cache.get("n", 0) + 1


def child(threads):
    cache = tracelens.watch({{}}, name="cache")
    ts = [threading.Thread(target=update, args=(cache,)) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()


if __name__ == "__main__":
    p = mp.get_context("spawn").Process(target=child, args=({threads},))
    p.start()
    child(1)
    p.join()
"""


@pytest.mark.parametrize(("threads", "racy"), [(1, False), (2, True)])
def test_watched_dicts_of_the_same_name_are_per_process(tmp_path, threads, racy):
    """``watch(name="cache")`` in the parent and in a spawned child: one thread in each is
    no race; two threads in the child race, in the child only."""
    trace = _run(tmp_path, WATCHED.format(threads=threads))
    kinds, _, pids = _races(trace, "cache['n']")
    assert bool(kinds & RACES) is racy
    assert kinds <= RACES
    if racy:
        assert pids == _child_pids(trace)


def test_only_a_forkserver_command_line_is_changed():
    """A forkserver's ``-c`` program is prefixed with the recorder's set-up; any other
    command line (the resource tracker's) is left as it is."""
    child = _config._ChildConfig("/tmp/t.jsonl", {"stress": False})
    tracker = ["python", "-c", "from multiprocessing.resource_tracker import main;main(5)"]
    server = ["python", "-I", "-c", "from multiprocessing.forkserver import main; main(3, 4)"]
    assert child.forkserver_args(tracker) == tracker
    changed = child.forkserver_args(server)
    assert changed[:-1] == server[:-1] and changed[-1].endswith(server[-1])
    assert "_configure_child" in changed[-1] and "'/tmp/t.jsonl'" in changed[-1]


FIDELITY = """
import multiprocessing as mp
import sys

counter = {"n": 0}
print("imported as", __name__, sys.argv[0] == __file__, flush=True)


class Job:
    def __init__(self, n):
        self.n = n


def run(job):
    counter["n"] += job.n
    print("child", __name__, sys.argv, counter, type(job).__module__, flush=True)
    return counter["n"]


if __name__ == "__main__":
    for method in ("spawn", "forkserver"):
        with mp.get_context(method).Pool(1) as pool:
            print(method, pool.apply(run, (Job(3),)), flush=True)
"""


def test_a_spawned_child_runs_the_script_again_as_in_the_plain_run(tmp_path):
    """What a spawned or forkserver child sees of the script it runs again (its name,
    ``sys.argv``, its globals, classes pickled by name) and what it returns are those of
    the plain run."""
    (tmp_path / "app.py").write_text(textwrap.dedent(FIDELITY))

    def output(*cmd: str) -> str:
        out = subprocess.run(
            [sys.executable, *cmd, "app.py", "x"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=T,
        )
        assert out.returncode == 0, out.stderr
        return out.stdout

    plain = output()
    assert "spawn 3" in plain and "forkserver 3" in plain
    assert output("-m", "tracelens", "run", "-o", "t.jsonl") == plain
