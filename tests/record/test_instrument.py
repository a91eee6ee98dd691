"""``tracelens run`` records the shared state of code nobody marked (the import-time rewrite).

Each racy program has a fixed twin that must stay quiet.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import env_with_path
from tracelens.analyze import analyze, load

T = 120


def _run(
    tmp_path: Path,
    source: str,
    *args: str,
    env_path: tuple[Path, ...] = (),
    module: bool = False,
) -> Path:
    """Run ``source`` as ``app.py`` under ``tracelens run`` (``module``: as ``-m app``),
    ``env_path`` first on ``PYTHONPATH``; the trace's path."""
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(source))
    trace = tmp_path / "app.jsonl"
    target = ["-m", "app"] if module else [str(script)]
    out = subprocess.run(
        [sys.executable, "-m", "tracelens", "run", "-o", str(trace), *args, *target],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=T,
        env=env_with_path(*env_path),
    )
    assert out.returncode == 0, out.stderr
    return trace


def _found(trace: Path) -> set[tuple[str, str]]:
    return {(f.kind, v) for f in analyze(load(trace)).findings for v in f.variables}


def _sites(trace: Path, kind: str, var: str) -> set[tuple[str, int]]:
    return {
        (Path(s.file).name, s.line)
        for f in analyze(load(trace)).findings
        if f.kind == kind and var in f.variables
        for s in f.sites
    }


ARTICLE = """
import threading
{lock}
model_params = {{"weight": 1.0}}


def update_model(delta):
    {with_}current = model_params["weight"]
    {ind}model_params["weight"] = current + delta


def worker():
    for _ in range(10000):  # enough turns that the lost update happens, loaded machine or not
        update_model(0.1)


threads = [threading.Thread(target=worker) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def _article(locked: bool) -> str:
    if not locked:
        return ARTICLE.format(lock="", with_="", ind="")
    return ARTICLE.format(
        lock="LOCK = threading.Lock()",
        with_="with LOCK:\n        ",
        ind="    ",
    )


def test_the_articles_program_unchanged_races_on_its_dict_entry(tmp_path):
    """The article's unmarked update gives a data race and a lost update on
    ``model_params['weight']``."""
    found = _found(_run(tmp_path, _article(locked=False), "--stress"))
    assert {("data_race", "model_params['weight']"), ("lost_update", "model_params['weight']")} <= (
        found
    )


def test_the_articles_race_is_between_the_programs_own_lines(tmp_path):
    """Both sites of the article's data race are the read and the write in ``app.py``."""
    trace = _run(tmp_path, _article(locked=False), "--stress")
    assert _sites(trace, "data_race", "model_params['weight']") <= {("app.py", 8), ("app.py", 9)}


def test_the_articles_locked_fix_is_quiet(tmp_path):
    """With a ``threading.Lock`` around the update, nothing is reported."""
    assert _found(_run(tmp_path, _article(locked=True), "--stress")) == set()


@pytest.mark.parametrize(("locked", "racy"), [(False, True), (True, False)])
def test_a_module_run_with_dash_m_is_rewritten_too(tmp_path, locked, racy):
    """``tracelens run -m app`` records the module run as ``__main__``: the article's race at
    its own lines; with the lock, nothing."""
    trace = _run(tmp_path, _article(locked=locked), "--stress", module=True)
    found = _found(trace)
    assert (("data_race", "model_params['weight']") in found) is racy
    if racy:
        assert _sites(trace, "data_race", "model_params['weight']") <= {
            ("app.py", 8),
            ("app.py", 9),
        }
    else:
        assert found == set()


def test_no_instrument_records_no_shared_state(tmp_path):
    """``--no-instrument`` runs the program as before: no variable is recorded."""
    trace = _run(tmp_path, _article(locked=False), "--no-instrument")
    assert analyze(load(trace)).summary["variables"] == 0


ASYNC = """
import asyncio
stats = {{"hits": 0}}
{lock}

async def hit():
    {with_}n = stats["hits"]
    {ind}await asyncio.sleep(0)
    {ind}stats["hits"] = n + 1


async def main():
    {make}
    await asyncio.gather(*(hit() for _ in range(5)))

asyncio.run(main())
"""


@pytest.mark.parametrize(("locked", "racy"), [(False, True), (True, False)])
def test_an_asyncio_read_await_write_is_a_lost_update_unless_locked(tmp_path, locked, racy):
    """A read, an ``await`` and a write of a dict entry lose updates; an asyncio.Lock fixes it."""
    source = ASYNC.format(
        lock="LOCK = None" if locked else "",
        with_="async with LOCK:\n        " if locked else "",
        ind="    " if locked else "",
        make="global LOCK\n    LOCK = asyncio.Lock()" if locked else "pass",
    )
    found = _found(_run(tmp_path, source))
    assert (("lost_update", "stats['hits']") in found) is racy
    if not racy:
        assert not {f for f in found if f[1] == "stats['hits']"}


POOL = """
from concurrent.futures import ThreadPoolExecutor
import threading

class Counter:
    def __init__(self):
        self.n = 0
        self.lock = threading.Lock()

    def bump(self):
        {body}

c = Counter()
with ThreadPoolExecutor(4) as pool:
    for _ in range(400):
        pool.submit(c.bump)
"""


@pytest.mark.parametrize(
    ("body", "racy"),
    [("self.n += 1", True), ("with self.lock:\n            self.n += 1", False)],
)
def test_a_counter_attribute_bumped_from_a_pool(tmp_path, body, racy):
    """``self.n += 1`` from pool workers races on ``Counter.n``; under the object's lock not."""
    found = _found(_run(tmp_path, POOL.format(body=body), "--stress"))
    assert (("data_race", "Counter.n") in found) is racy
    if not racy:
        assert found == set()


CONNECT = """
import threading
{lock}

class Client:
    def __init__(self):
        self.conn = None

    def get(self):
        {with_}if self.conn is None:
            {ind}self.conn = object()
        {ind}return self.conn

client = Client()
threads = [threading.Thread(target=client.get) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


@pytest.mark.parametrize(("locked", "racy"), [(False, True), (True, False)])
def test_a_check_then_act_on_an_instance_attribute(tmp_path, locked, racy):
    """``if self.conn is None: self.conn = ...`` races between threads unless locked."""
    source = CONNECT.format(
        lock="LOCK = threading.Lock()" if locked else "",
        with_="with LOCK:\n            " if locked else "",
        ind="    " if locked else "",
    )
    found = _found(_run(tmp_path, source, "--stress"))
    assert (("data_race", "Client.conn") in found) is racy
    if not racy:
        assert found == set()


GLOBAL = """
import threading
count = 0
LOCK = threading.Lock()

def bump():
    global count
    for _ in range(300):
        {body}

threads = [threading.Thread(target=bump) for _ in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


@pytest.mark.parametrize(
    ("body", "racy"),
    [("count += 1", True), ("with LOCK:\n            count += 1", False)],
)
def test_a_module_global_updated_with_global(tmp_path, body, racy):
    """A ``global`` counter updated by threads races unless each update holds the lock."""
    found = _found(_run(tmp_path, GLOBAL.format(body=body), "--stress"))
    assert (("data_race", "count") in found) is racy
    if not racy:
        assert found == set()


def test_two_instances_of_one_class_are_two_variables(tmp_path):
    """Each thread bumping its own instance of a class is no race: instances do not merge."""
    source = """
    import threading

    class Counter:
        def __init__(self):
            self.n = 0

    def work(c):
        for _ in range(200):
            c.n += 1

    counters = [Counter() for _ in range(3)]
    threads = [threading.Thread(target=work, args=(c,)) for c in counters]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    """
    assert _found(_run(tmp_path, source, "--stress")) == set()


LAZY = """
import threading
{lock_line}

class ComponentLocator:
    def __init__(self):
        self._deferred = {{"endpoint_resolver": lambda: object()}}
        self._components = {{}}

    def get_component(self, name):
        {with_}if name in self._deferred:
            {ind}factory = self._deferred[name]
            {ind}self._components[name] = factory()
            {ind}del self._deferred[name]
        {ind}return self._components[name]
"""

MAIN = """
import threading
import lazypkg

loc = lazypkg.ComponentLocator()
threads = [
    threading.Thread(target=loc.get_component, args=("endpoint_resolver",)) for _ in range(4)
]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


def _package(tmp_path: Path, locked: bool) -> Path:
    lib = tmp_path / "site" / "lazypkg"
    lib.mkdir(parents=True)
    (lib / "__init__.py").write_text(
        textwrap.dedent(
            LAZY.format(
                lock_line="_LOCK = threading.Lock()" if locked else "",
                with_="with _LOCK:\n            " if locked else "",
                ind="    " if locked else "",
            )
        )
    )
    return lib.parent


@pytest.mark.parametrize(("locked", "racy"), [(False, True), (True, False)])
def test_a_lazy_cache_in_an_instrumented_package(tmp_path, locked, racy):
    """``--instrument lazypkg`` finds the package's check-then-act on its own dict entries,
    named by class and attribute; with the package's lock it is quiet."""
    site = _package(tmp_path, locked)
    trace = _run(tmp_path, MAIN, "--stress", "--instrument", "lazypkg", env_path=(site,))
    found = _found(trace)
    var = "ComponentLocator._deferred['endpoint_resolver']"
    assert (("data_race", var) in found) is racy
    if not racy:
        assert found == set()


def test_an_uninstrumented_package_is_not_recorded(tmp_path):
    """Without ``--instrument``, a package outside the project records no shared state."""
    site = _package(tmp_path, locked=False)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text("[project]\nname = 'app'\n")
    trace = _run(project, MAIN, "--stress", env_path=(site,))
    assert _found(trace) == set()


def test_the_pyproject_names_packages_to_instrument(tmp_path):
    """``[tool.tracelens] instrument`` in the project's pyproject.toml instruments a package."""
    site = _package(tmp_path, locked=False)
    project = tmp_path / "project"
    project.mkdir()
    (project / "pyproject.toml").write_text('[tool.tracelens]\ninstrument = ["lazypkg"]\n')
    trace = _run(project, MAIN, "--stress", env_path=(site,))
    assert ("data_race", "ComponentLocator._deferred['endpoint_resolver']") in _found(trace)


REGISTRY = """
import threading
import time
registry = {{f"r{{i}}": i for i in range(50)}}
LOCK = threading.Lock()

def reader():
    for _ in range(20):
        {read}

def writer():
    for i in range(200):
        {write}
        time.sleep(0)

threads = [threading.Thread(target=reader), threading.Thread(target=writer)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


@pytest.mark.parametrize(
    ("read", "write", "racy"),
    [
        (
            "total = sum(registry[k] for k in list(registry.keys()))",
            "registry[f'w{i}'] = i",
            True,
        ),
        (
            "with LOCK:\n            snapshot = registry.copy()",
            "with LOCK:\n            registry[f'w{i}'] = i",
            False,
        ),
    ],
)
def test_a_dict_read_whole_while_another_thread_inserts(tmp_path, read, write, racy):
    """Reading a dict's key set while another thread inserts races on the dict; a copy
    taken under the lock the inserts hold does not."""
    found = _found(_run(tmp_path, REGISTRY.format(read=read, write=write), "--stress"))
    assert (("data_race", "registry") in found) is racy
    if not racy:
        assert not {f for f in found if f[1] == "registry"}


def test_iterating_a_dict_is_an_interval(tmp_path):
    """A ``for`` loop over a dict reads its key set when it starts and when it ends."""
    source = """
    d = {"a": 1, "b": 2}
    for k in d:
        pass
    """
    trace = _run(tmp_path, source)
    events = load(trace).events.collect()
    reads = events.filter((events["var"] == "d") & (events["op"] == "read"))
    assert reads.height == 2


def _python(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "prog.py").write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, "prog.py"], cwd=tmp_path, capture_output=True, text=True, timeout=T
    )


MYLIB = """
import threading

class Box:
    def __init__(self):
        self.n = 0

def bump(box):
    for _ in range(300):
        box.n += 1
"""


def test_configure_instruments_the_modules_it_names(tmp_path):
    """``configure(path, instrument=["mylib"])`` records the accesses of ``mylib`` imported
    after it."""
    (tmp_path / "mylib.py").write_text(textwrap.dedent(MYLIB))
    out = _python(
        tmp_path,
        """
        import sys, threading
        import tracelens
        tracelens.configure("t.jsonl", instrument=["mylib"], stress=True)
        import mylib
        box = mylib.Box()
        ts = [threading.Thread(target=mylib.bump, args=(box,)) for _ in range(4)]
        for t in ts: t.start()
        for t in ts: t.join()
        tracelens.shutdown()
        """,
    )
    assert out.returncode == 0, out.stderr
    assert ("data_race", "Box.n") in _found(tmp_path / "t.jsonl")


def test_configure_names_the_modules_imported_too_early(tmp_path):
    """A module named to ``configure(instrument=...)`` but imported before is named on stderr."""
    (tmp_path / "mylib.py").write_text(textwrap.dedent(MYLIB))
    out = _python(
        tmp_path,
        """
        import mylib
        import tracelens
        tracelens.configure("t.jsonl", instrument=["mylib"])
        tracelens.shutdown()
        """,
    )
    assert out.returncode == 0, out.stderr
    assert "imported before configure(), not instrumented: mylib" in out.stderr


def test_a_traceback_through_an_instrumented_access_reads_as_the_programs(tmp_path):
    """An uncaught KeyError from ``d[k]`` shows the program's frames, not tracelens's."""
    script = tmp_path / "app.py"
    script.write_text('d = {}\n\ndef f():\n    return d["missing"]\n\nf()\n')
    out = subprocess.run(
        [sys.executable, "-m", "tracelens", "run", "-o", str(tmp_path / "t.jsonl"), str(script)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=T,
    )
    assert out.returncode == 1
    assert 'return d["missing"]' in out.stderr and "KeyError: 'missing'" in out.stderr
    assert "tracelens" not in out.stderr.split("trace written")[0].replace("tracelens: ", "")


SWAP = """
import threading
{lock}

class Pair:
    def __init__(self):
        self.lo, self.hi = 0, 1

    def step(self):
        for _ in range(200):
            {with_}self.lo, self.hi = self.hi, self.lo + self.hi

pair = Pair()
threads = [threading.Thread(target=pair.step) for _ in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
"""


@pytest.mark.parametrize(("locked", "racy"), [(False, True), (True, False)])
def test_attributes_stored_by_tuple_unpacking_race_unless_locked(tmp_path, locked, racy):
    """``self.lo, self.hi = ...`` records both stores: a data race unless under one lock."""
    source = SWAP.format(
        lock="LOCK = threading.Lock()" if locked else "",
        with_="with LOCK:\n                " if locked else "",
    )
    found = _found(_run(tmp_path, source, "--stress"))
    assert (("data_race", "Pair.hi") in found) is racy
    assert (("data_race", "Pair.lo") in found) is racy
    if not racy:
        assert found == set()
