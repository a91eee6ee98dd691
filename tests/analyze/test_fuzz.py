"""Fuzzing the analyzer with near-valid traces: it reports, or refuses in one line.

Hypothesis draws traces that a recorder would hardly write but the format allows: every
operation (and unknown ones), every kind (and unknown ones), units and objects mixed up
(a lock used as a thread, a unit forked twice), optional fields present or not, odd
values, several processes, sequence numbers with gaps, shuffled lines, repeated events.
``load`` + ``analyze`` + every renderer + the Perfetto export must succeed, or raise
``tracelens.exceptions.TracelensError`` with a one-line message: never anything else.

Two Hypothesis profiles (registered here, used by the tests of this module only):

* ``fuzz-ci`` (the default): 40 examples (20 for the two-loads test), no deadline: a
  few seconds, for CI;
* ``fuzz``: 5,000 examples, for a long run by hand::

      HYPOTHESIS_PROFILE=fuzz pytest -q -p no:randomly tests/analyze/test_fuzz.py

  (about 15 minutes per test on a quiet 2-core machine; 5,000 examples of the first
  test passed when it was written)
"""

from __future__ import annotations

import gzip
import os
import random
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.odd_traces import CORPUS
from tests.traces import event
from tracelens import schema as s
from tracelens.analyze import Trace, analyze, load
from tracelens.analyze.findings import sort_findings
from tracelens.exceptions import TracelensError
from tracelens.export import perfetto
from tracelens.report import FORMATS, render

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("fuzz-ci", max_examples=40, **_COMMON)
settings.register_profile("fuzz", max_examples=5_000, **_COMMON)
FUZZ = settings.get_profile("fuzz" if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else "fuzz-ci")

_KINDS = [v for k, v in vars(s.Kind).items() if k.isupper()]
OPS = st.sampled_from([*s.OPS, "frobnicate", "", "READ"])
KINDS = st.one_of(st.none(), st.sampled_from([*_KINDS, "spinlock"]))
UNITS = st.sampled_from(["t0", "t1", "t2", "a1", "a2", "", "t\u00e9"])
#: Objects: locks, queues, regions, units (children named by fork/join), processes.
OBJS = st.one_of(
    st.none(), st.sampled_from(["L", "M", "q", "ev", "region", "t1", "t2", "a1", "p2"])
)
VARS = st.sampled_from(["x", "y", "d['k']", "x\x1b[31m\u202e", ""])
TEXT = st.text(max_size=6)
VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    TEXT,
    st.sampled_from(["<missing>", "<list len=3>"]),
)
INT64 = st.integers(-(2**63), 2**63 - 1)
WRONG = st.one_of(
    st.text(max_size=3), st.lists(st.integers(-5, 5), max_size=2), st.just({"a": 1}), st.floats()
)
SMALL = st.integers(-3, 50)


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


@st.composite
def fuzz_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A near-valid trace: a few events of any operation, in any order, as dicts."""
    n = draw(st.integers(1, 24))
    pids = draw(st.sampled_from([[1], [1], [1, 2], [0, 2**23 - 1]]))
    seq_mode = draw(st.sampled_from(["dense", "gaps", "edges"]))
    events = []
    for i in range(n):
        op = draw(OPS)
        memory = op in s.MEMORY_OPS
        seq = {"dense": i, "gaps": i * draw(st.integers(1, 1000)), "edges": 2**40 - 1 - i}[seq_mode]
        if draw(st.integers(0, 9)) == 0:  # now and then, anything
            seq = draw(st.integers(-2, 2**41))
        fields: dict[str, Any] = {
            s.TID: draw(_maybe(SMALL)),
            s.THREAD: draw(_maybe(TEXT)),
            s.TASK: draw(_maybe(TEXT)) if draw(st.booleans()) else None,
            s.VAR: draw(VARS) if memory or draw(st.integers(0, 5)) == 0 else None,
            s.OBJ: None if memory and draw(st.booleans()) else draw(OBJS),
            s.KIND: None if memory else draw(KINDS),
            s.VALUE: draw(VALUES),
            s.FILE: draw(_maybe(st.sampled_from(["app.py", "/abs/x.py", "\x1b[2J.py"]))),
            s.LINE: draw(_maybe(st.one_of(SMALL, INT64))),
            s.FUNC: draw(_maybe(st.sampled_from(["f", "<module>", "g\x00"]))),
            s.WAIT_NS: draw(_maybe(INT64)) if op == s.Op.ACQUIRE else None,
            s.MSG: draw(_maybe(st.integers(-2, 3))),
            s.COUNT: draw(_maybe(SMALL)),
            s.INTERNAL: draw(_maybe(st.booleans())),
        }
        ts = draw(st.one_of(st.just(1_000 + 10 * i), INT64))
        ev = event(op, seq=seq, ts=ts, pid=draw(st.sampled_from(pids)), unit=draw(UNITS), **fields)
        if draw(st.integers(0, 19)) == 0:
            ev.pop(s.TS)
        if draw(st.integers(0, 14)) == 0:  # a field of the wrong type: a malformed line
            ev[draw(st.sampled_from(sorted(ev)))] = draw(WRONG)
        events.append(ev)
    repeats = draw(st.lists(st.integers(0, n - 1), max_size=3))
    events += [dict(events[i]) for i in repeats]  # identical copies: dropped
    if draw(st.booleans()):  # file order is not sequence order
        random.Random(draw(st.integers(0, 2**32))).shuffle(events)
    return events


def _lines(events: list[dict[str, Any]], *, gz: bool = False) -> bytes:
    data = b"".join(orjson.dumps(e, option=orjson.OPT_APPEND_NEWLINE) for e in events)
    return gzip.compress(data) if gz else data


@contextmanager
def _files(*contents: bytes) -> Iterator[list[Path]]:
    with tempfile.TemporaryDirectory() as d:
        paths = []
        for i, data in enumerate(contents):
            p = Path(d) / f"trace{i}.jsonl"
            p.write_bytes(data)
            paths.append(p)
        yield paths


def _load(paths: list[Path]) -> Trace | None:
    """The trace, or ``None`` when the loader refuses it with the project's one-line error."""
    try:
        return load(paths)
    except TracelensError as e:
        assert len(str(e).splitlines()) == 1, repr(str(e))
        return None


def _corpus_example(name: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in CORPUS[name]]


@FUZZ
@given(fuzz_events(), st.booleans())
@example(_corpus_example("unusual_kinds"), False)  # issue 17: IndexError in lock-mask names
@example(_corpus_example("all_one_seq"), False)  # issue 17: a traceback in every format
@example(_corpus_example("missing_optional_fields"), False)  # sites without file or func
def test_load_analyze_render_succeed_or_refuse_in_one_line(
    events: list[dict[str, Any]], gz: bool
) -> None:
    """Any near-valid trace (plain or gzip) loads, is analysed, renders in every format
    and exports; or the loader refuses it with the project's error in one line."""
    with _files(_lines(events, gz=gz)) as paths:
        trace = _load(paths)
        if trace is None:
            return
        result = analyze(trace)
        for fmt in FORMATS:
            assert render(result, fmt), fmt
        assert perfetto.dumps(perfetto.to_chrome_trace(trace.events, result.findings))


@settings(FUZZ, max_examples=max(1, FUZZ.max_examples // 2))  # two loads and analyses each
@given(fuzz_events())
def test_a_trace_given_twice_reports_as_once(events: list[dict[str, Any]]) -> None:
    """A trace given twice (two files) loads to the same events and findings as once,
    with every event of the copy counted as a duplicate."""
    data = _lines(events)
    with _files(data, data) as (one, two):
        once = _load([one])
        if once is None:
            return
        twice = load([one, two])
        assert twice.events.collect().equals(once.events.collect())
        # the copy: each of its lines; the first file: its own repeats
        assert twice.stats.duplicates == once.stats.events + 2 * once.stats.duplicates
        assert [f.to_dict() for f in sort_findings(analyze(twice).findings)] == [
            f.to_dict() for f in sort_findings(analyze(once).findings)
        ]
