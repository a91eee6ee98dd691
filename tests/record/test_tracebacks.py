"""The tracebacks a program prints under ``tracelens run`` read as in its plain run.

Each program runs twice, plain (``python app.py``) and under ``tracelens run`` (the
instrumented code), and their stderr is compared: no tracelens helper frame, the same
files, lines, functions and error markers. Every recorder test runs on the C helpers and
on their pure-Python reference (``conftest.py``).
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

T = 120

#: Accesses that raise in instrumented code, each caught and printed by the program.
CAUGHT = """
import traceback
from collections import deque


class Box:
    __slots__ = ("x",)

    def __init__(self):
        self.x = 1


class Bad:
    def __getitem__(self, k):
        raise LookupError(k)


d = {"a": 1}
lst = [1]
dq = deque()
f = lambda: d["zz"]


def attribute_error(b):
    return b.missing


def key_error():
    return d["nope"]


def in_a_comprehension():
    return [d[k] for k in ("a", "b")]


def container_method():
    return lst.index(42)


def popleft_empty():
    return dq.popleft()


def store_to_slots():
    b = Box()
    b.y = 2


def delete_missing():
    del d["nope"]


def users_getitem():
    return Bad()[1]


def not_iterable():
    for x in 5:
        pass


def changed_while_iterated():
    for k in d:
        d[k + "x"] = 1


def comprehension_over_nothing():
    return {k: v for k, v in
            7}


def undefined_global():
    global nowhere
    return nowhere


def unhashable():
    return [] in {1: 2}


def augmented():
    b = Box()
    b.x += "s"


for fn in (lambda: attribute_error(Box()), key_error, f, in_a_comprehension,
           container_method, popleft_empty, store_to_slots, delete_missing,
           users_getitem, not_iterable, changed_while_iterated,
           comprehension_over_nothing, undefined_global, unhashable, augmented):
    try:
        fn()
    except Exception:
        traceback.print_exc()
"""

#: An uncaught KeyError in a lambda called by a method: printed by the runner.
UNCAUGHT = """
registry = {}


class Service:
    def lookup(self, name):
        pick = lambda: registry[name]
        return pick()


Service().lookup("missing")
"""


def _stderr(tmp_path: Path, source: str, *, traced: bool) -> str:
    script = tmp_path / "app.py"
    script.write_text(textwrap.dedent(source))
    cmd = [sys.executable, "-m", "tracelens", "run", "-o", str(tmp_path / "t.jsonl")]
    out = subprocess.run(
        [*cmd, "app.py"] if traced else [sys.executable, "app.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=T,
    )
    lines = out.stderr.splitlines(keepends=True)
    return "".join(line for line in lines if not line.startswith("tracelens: "))


def _frames(text: str) -> list[str]:
    return re.findall(r'^ *File "[^"]*", line \d+, in .*$', text, re.M)


def test_caught_tracebacks_name_the_programs_frames_only(tmp_path):
    """Every traceback the program prints names the same files, lines and functions as in
    the plain run, and no tracelens frame."""
    plain = _stderr(tmp_path, CAUGHT, traced=False)
    traced = _stderr(tmp_path, CAUGHT, traced=True)
    assert plain.count("Traceback") == 15
    assert _frames(traced) == _frames(plain)
    assert "tracelens" not in traced and "<tracelens>" not in traced


def test_caught_tracebacks_read_as_in_the_plain_run(tmp_path):
    """Apart from an augmented assignment's error markers (which span the statement), the
    printed tracebacks are the plain run's, line for line."""
    source = CAUGHT.replace(", augmented):", "):")
    assert _stderr(tmp_path, source, traced=True) == _stderr(tmp_path, source, traced=False)


def test_an_uncaught_exception_reads_as_in_the_plain_run(tmp_path):
    """The traceback of an uncaught KeyError raised in a lambda in a method is the plain
    run's, line for line."""
    plain = _stderr(tmp_path, UNCAUGHT, traced=False)
    assert "KeyError: 'missing'" in plain
    assert _stderr(tmp_path, UNCAUGHT, traced=True) == plain


@pytest.mark.parametrize("flag", ["--no-instrument", "--stress"])
def test_the_scripts_file_name_is_absolute_as_in_the_plain_run(tmp_path, flag):
    """The script's frames name its absolute path, as ``python app.py`` does, with or
    without instrumentation."""
    script = tmp_path / "app.py"
    script.write_text("import sys\nprint(__file__)\nprint(sys.argv[0])\n")
    out = subprocess.run(
        [sys.executable, "-m", "tracelens", "run", flag, "-o", "t.jsonl", "app.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=T,
    )
    assert out.stdout.splitlines() == [str(script), "app.py"]
