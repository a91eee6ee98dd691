"""The vectorised STD converter against the per-line reference (``std_events``)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from tracelens.importers import StdError, StdStats, convert_std
from tracelens.importers._std_fast import fast_convert
from tracelens.importers.std import _write_reference

_THREADS = st.sampled_from(["T0", "T1", " T2 ", "main", "", "T|3"])
_OPS = st.sampled_from(
    ["r(V1)", "w(V2)", "W(x y)", "acq(L1)", "rel(L1)", "req(L2)", "fork(T1)", "join(T1)",
     "begin", "begin(B)", "end", "enter(M)", "exit(M)", "branch", "dummy", "r()", "acq",
     "bogus(1)", "r(V", "w(V\"q)", "r(é)"]
)  # fmt: skip
_LOCS = st.sampled_from(["345", "-7", "--5", "007", "main.c:9", "", " 12 ", "9" * 20, "-"])


@st.composite
def std_text(draw: st.DrawFn) -> str:
    """STD text: mostly well-formed lines, with blank, comment and malformed ones mixed in."""
    lines = []
    for _ in range(draw(st.integers(0, 30))):
        form = draw(st.integers(0, 9))
        if form == 0:
            lines.append(draw(st.sampled_from(["", "# c", "  ", "x", "a|b|c|d"])))
        elif form == 1:
            lines.append(draw(st.text(max_size=12)))
        elif form < 5:
            lines.append(f"{draw(_THREADS)}|{draw(_OPS)}")
        else:
            lines.append(f"{draw(_THREADS)}|{draw(_OPS)}|{draw(_LOCS)}")
    return "\n".join(lines) + draw(st.sampled_from(["", "\n", "\r\n"]))


def run(fn, text: str) -> tuple[bytes | str, int, dict[str, int]]:
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "t.std", Path(tmp) / "t.jsonl"
        src.write_bytes(text.encode())
        stats = StdStats()
        try:
            fn(src, out, stats)
        except StdError as e:
            return str(e), stats.events, {}
        return out.read_bytes(), stats.events, stats.skipped


def via_reference(src: Path, out: Path, stats: StdStats) -> None:
    text = src.read_text()
    _write_reference(text.split("\n"), src.name, out, stats)


def via_convert(src: Path, out: Path, stats: StdStats) -> None:
    convert_std(src, out, stats=stats)


@settings(max_examples=300, deadline=None)
@given(std_text())
def test_convert_matches_the_reference(text):
    """convert_std writes the reference's bytes and counts, or raises its error on the same line."""
    assert run(via_convert, text) == run(via_reference, text)


@settings(max_examples=200, deadline=None)
@given(std_text())
def test_fast_path_matches_the_reference_when_it_answers(text):
    """Whenever the vectorised path takes a trace, its lines are the reference's, byte for byte."""
    text = text.replace("\r\n", "\n")
    skipped: dict[str, int] = {}
    col = fast_convert(text, "t.std", skipped)
    ref, _events, ref_skipped = run(via_reference, text)
    if col is not None:
        got = "".join(line + "\n" for line in col.to_list()).encode()
        assert (got, skipped) == (ref, ref_skipped)


def test_fast_path_takes_a_plain_trace():
    """A well-formed ASCII trace with every operation goes the vectorised way."""
    text = "T1|w(V3)|345\nT2|acq(L1)|1\nT2|rel(L1)|x.c\nT1|begin\nT1|end\nT1|enter(M)|2\n"
    assert fast_convert(text, "t.std", {}) is not None
