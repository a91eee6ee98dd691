"""The C accelerator does exactly what its pure-Python reference does."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tracelens.record import _core
from tracelens.record._core import NOVALUE, RAW, UnitState
from tracelens.record._sink import VALUE_LIMIT, Sink, _dumps_value, dumps

C = _core.speedups if _core.speedups is not None else None
#: The C record itself (the python run of the conftest puts ``py_record`` in its place).
C_RECORD = C.record if C is not None else None
pytestmark = pytest.mark.skipif(
    os.environ.get("TRACELENS_PURE_PYTHON") == "1" or C is None,
    reason="the C accelerator is not built or is switched off",
)

_text = st.text(st.characters(codec=None, exclude_categories=()), max_size=VALUE_LIMIT + 20)
_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.floats(),  # nan and inf included
    _text,
    st.text(alphabet=st.characters(max_codepoint=127), max_size=VALUE_LIMIT + 5),
    st.sampled_from(["<missing>", "", '\x00\x1f"\\\x7f', "\ud800", "é" * 200, "a" * 500]),
)
_extras = st.one_of(
    st.none(),
    st.just({}),
    st.dictionaries(st.text(max_size=8), _scalars, max_size=3),
    st.dictionaries(
        st.sampled_from(["kind", "wait_ns", "n"]),
        st.one_of(st.integers(-(2**63), 2**63 - 1), st.booleans(), st.none(), st.text(max_size=5)),
        max_size=3,
    ),
)


def _code_here() -> Any:
    return sys._getframe().f_code


def _records(draw: st.DrawFn) -> list[tuple[Any, ...]]:
    codes = [_code_here.__code__, _records.__code__]
    out: list[tuple[Any, ...]] = []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.integers(0, 9)) == 0:
            out.append((RAW, draw(st.sampled_from([b'{"event":"app"}', b'{"x":1}\n']))))
            continue
        out.append(
            (
                draw(st.sampled_from(["read", "write", "acquire"])),
                draw(st.integers(0, 2**70)),
                draw(st.integers(0, 2**63)),
                draw(st.one_of(st.sampled_from(["d['k']", "model"]), _text)),
                draw(st.one_of(st.just(NOVALUE), _scalars)),
                draw(st.sampled_from(codes)),
                draw(st.sampled_from([0, 2, 40, 1000])),
                draw(st.sampled_from([None, ("a3", "Task-1"), ("a4", "ünï")])),
                draw(_extras),
                draw(st.one_of(st.none(), st.integers(1, 2**63 - 1))),  # the stack id
            )
        )
    return out


def _sink(tmp_path: Path) -> Sink:
    return Sink(tmp_path / "t.jsonl")


def _c_render(sink: Sink, st_: UnitState, chunk: list[tuple[Any, ...]]) -> bytes | Exception:
    assert C is not None
    try:
        out = C.render(
            chunk,
            st_,
            sink._prefixes,
            sink._prefix,
            _dumps_value,
            dumps,
            RAW,
            NOVALUE,
            VALUE_LIMIT,
            -1,
        )
    except Exception as exc:
        return exc
    assert out is not None
    return out


def _py_render(sink: Sink, st_: UnitState, chunk: list[tuple[Any, ...]]) -> bytes | Exception:
    try:
        return sink._py_render(st_, chunk)
    except Exception as exc:
        return exc


@settings(max_examples=300, deadline=None)
@given(chunk=st.composite(_records)())
def test_the_c_renderer_writes_the_bytes_the_python_renderer_writes(
    tmp_path_factory: pytest.TempPathFactory, chunk: list[tuple[Any, ...]]
) -> None:
    """For any chunk of records, C and Python render the same bytes, or both raise."""
    sink = _sink(tmp_path_factory.mktemp("r"))
    unit = UnitState("t1", 1, "worker")
    py = _py_render(sink, unit, chunk)
    c = _c_render(sink, unit, chunk)  # its prefixes come from the cache the Python run filled
    fresh = _c_render(_sink(tmp_path_factory.mktemp("r")), unit, chunk)
    sink.close()
    if isinstance(py, Exception):
        assert type(c) is type(py) and type(fresh) is type(py)
    else:
        assert c == py and fresh == py
        for line in py.splitlines():
            orjson.loads(line)  # every line is JSON


def test_the_c_renderer_writes_a_large_chunk_to_the_file_in_whole_lines(tmp_path: Path) -> None:
    """With a descriptor, the C renderer writes the chunk there, byte for byte as rendered."""
    sink = _sink(tmp_path)
    unit = UnitState("t1", 1, "worker")
    code = _code_here.__code__
    chunk = [
        ("write", i, i, "d['k']", "x" * (i % 130), code, 2, None, None, i % 3 or None)
        for i in range(5000)
    ]
    expected = sink._py_render(unit, chunk)
    assert C is not None
    assert (
        C.render(
            chunk,
            unit,
            sink._prefixes,
            sink._prefix,
            _dumps_value,
            dumps,
            RAW,
            NOVALUE,
            VALUE_LIMIT,
            sink._fd,
        )
        is None
    )
    sink.close()
    assert (tmp_path / "t.jsonl").read_bytes() == expected


def _both_record(**kw: Any) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    assert C is not None
    unit = _core.unit_state()
    unit.buf = []
    _core.py_record("write", 7, "d['k']", **kw)
    C.record("write", 7, "d['k']", **kw)
    a, b = unit.buf
    unit.buf = []
    return a, b


def test_the_c_record_appends_the_record_the_python_record_appends() -> None:
    """C and Python record the same op, seq, target, value, code object, task and extra."""
    for kw in ({}, {"value": 3}, {"value": None, "extra": {"kind": "x"}}, {"depth": 1}):
        a, b = _both_record(**kw)
        assert a[:2] == b[:2] and a[3:5] == b[3:5] and a[7:9] == b[7:9]
        assert a[5] is b[5]  # the same code object
        assert abs(a[2] - b[2]) < 10**9  # both monotonic_ns


def _via(rec: Any) -> None:
    """Record as the recorder's functions do: the site is their caller, suspended in a call
    to Python code (a caller calling C code directly has another offset, see above)."""
    rec("write", 1, "v", depth=2)


def _stack_keys(depth: int) -> tuple[list[Any], list[tuple[Any, ...]], list[tuple[Any, int]]]:
    """The stack ids C and Python record at one call site, the keys they asked to intern
    (in order) and the callers above this function, as the walk should find them."""
    assert C is not None
    keys: list[tuple[Any, ...]] = []
    ids: dict[tuple[Any, ...], int] = {}

    def intern(key: tuple[Any, ...]) -> int:
        keys.append(key)
        return ids.setdefault(key, len(ids) + 1)

    callers: list[tuple[Any, int]] = []
    f: Any = sys._getframe(1)
    while f is not None and len(callers) < depth - 1:
        if f.f_code.co_filename in _core.SKIP_FILES:
            break
        callers.append((f.f_code, f.f_lasti))
        f = f.f_back
    saved = _core.STATE.stack_depth
    _core.STATE.stack_depth = depth
    C.forget_stacks()
    C.setup_stacks(intern)
    real, _core.intern_stack = _core.intern_stack, intern  # type: ignore[assignment]
    unit = _core.unit_state()
    unit.buf = []
    try:
        for _ in range(2):  # the second time, C answers from its cache
            for rec in (_core.py_record, C_RECORD):
                _via(rec)  # one call instruction: one site
    finally:
        _core.intern_stack = real  # type: ignore[assignment]
        _core.STATE.stack_depth = saved
        C.forget_stacks()
        C.setup_stacks(real)
    recs, unit.buf = unit.buf, []
    return [r[9] for r in recs], keys, callers


@pytest.mark.parametrize("depth", [1, 2, 8, 64])
def test_the_c_record_takes_the_stack_the_python_record_takes(depth: int) -> None:
    """At one call site, C and Python record the same stack key (the site, then its callers
    up to the depth asked, innermost first); C then answers from its cache."""
    ids, keys, callers = _stack_keys(depth)
    assert ids == [1, 1, 1, 1]
    assert len(keys) == 3 and keys[0] == keys[1] == keys[2]  # Python, C's miss, Python
    key = keys[0]
    assert key[0] is _stack_keys.__code__
    assert list(zip(key[2::2], key[3::2], strict=True)) == callers


def test_the_c_record_names_the_callers_line() -> None:
    """The call site the C record takes is the line of the caller at that depth."""
    assert C is not None
    unit = _core.unit_state()
    unit.buf = []
    C.record("write", 1, "v", depth=1)
    _core.py_record("write", 1, "v", depth=1)
    (c_rec, py_rec) = unit.buf
    unit.buf = []
    sink = Sink(None, emit=lambda d: None)
    assert sink._sites(c_rec[5], c_rec[6])[1] + 1 == sink._sites(py_rec[5], py_rec[6])[1]


def _in_a_thread(body: Any) -> Any:
    """Run ``body`` in a new thread (its own unit state) and give back what it returned."""
    import threading

    out: list[Any] = []
    t = threading.Thread(target=lambda: out.append(body()))
    t.start()
    t.join()
    return out[0]


def test_the_c_record_follows_a_thread_state_bound_or_forgotten_after_it_was_cached() -> None:
    """The C record appends to the thread's current state (``_local.st``) even after it
    cached an earlier one: a state bound anew, or forgotten and made again."""
    assert C_RECORD is not None

    def body() -> tuple[UnitState, UnitState, UnitState | None]:
        assert C_RECORD is not None
        first = _core.unit_state()
        C_RECORD("write", 1, "v", depth=1)  # caches ``first``
        second = _core.bind_unit_state("t-bound", 99, "bound")
        C_RECORD("write", 2, "v", depth=1)
        _core.forget_unit_state()
        C_RECORD("write", 3, "v", depth=1)  # makes a new state
        third = _core.bound_unit_state()
        return first, second, third

    first, second, third = _in_a_thread(body)
    for unit in (first, second, third):
        if unit is not None:
            _core.STATES.pop(id(unit), None)
    assert [r[1] for r in first.buf] == [1]
    assert [r[1] for r in second.buf] == [2]
    assert third is not None and third is not second and [r[1] for r in third.buf] == [3]


def test_a_file_added_to_skip_files_after_its_frames_were_seen_is_skipped() -> None:
    """The C record's cache of which code objects are in ``SKIP_FILES`` follows a file
    added later: its frames are no longer call sites."""
    assert C_RECORD is not None
    fake = "/nonexistent/tracelens-skip-test.py"
    scope: dict[str, Any] = {"rec": C_RECORD}
    exec(compile("def inner():\n    rec('write', 1, 'v', depth=1)\n", fake, "exec"), scope)
    unit = _core.unit_state()
    unit.buf = []
    try:
        scope["inner"]()
        _core.SKIP_FILES.add(fake)
        scope["inner"]()
    finally:
        _core.SKIP_FILES.discard(fake)
    (before, after), unit.buf = unit.buf, []
    assert before[5].co_filename == fake
    assert (
        after[5] is test_a_file_added_to_skip_files_after_its_frames_were_seen_is_skipped.__code__
    )
