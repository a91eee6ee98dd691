"""The STD importer, alone and through the whole pipeline (import -> load -> analyses)."""

from __future__ import annotations

import re
from pathlib import Path

import orjson
import pytest

from tracelens import schema as s
from tracelens.analyze import load
from tracelens.analyze.hb import (
    data_race,
    deadlock,
    inconsistent_locking,
    lock_order_inversion,
    tables,
)
from tracelens.importers import StdError, StdStats, convert_std

DATA = Path(__file__).parents[1] / "data" / "std"


def convert(tmp_path: Path, text: str) -> list[dict]:
    src = tmp_path / "t.std"
    src.write_text(text)
    out = tmp_path / "t.jsonl"
    convert_std(src, out)
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


@pytest.fixture
def mapped(tmp_path) -> list[dict]:
    """One STD line of each operation (and of the skipped ones), converted."""
    return convert(
        tmp_path,
        "T1|w(V3)|345\nT2|acq(L17)|120\nT2|rel(L17)|121\nT1|r(V3)|7\nT0|fork(T1)|1\n"
        "T0|join(T1)|2\nT2|req(L1)|9\nT1|begin|3\nT1|begin(B)|4\nT1|end|5\nT1|end|6\n"
        "T1|enter(M)|8\nT1|exit(M)|8\nT1|branch|8\nT1|dummy(x)|8\nT3|w(V1)|main.c:9\n",
    )


def test_mapping(mapped):
    """Each STD operation becomes its tracelens op on its variable or object, at its line."""
    evs = mapped
    ops = [(e[s.UNIT], e[s.OP], e.get(s.VAR) or e.get(s.OBJ), e[s.LINE]) for e in evs]
    assert ops == [
        ("T1", "write", "V3", 345),
        ("T2", "acquire", "L17", 120),
        ("T2", "release", "L17", 121),
        ("T1", "read", "V3", 7),
        ("T0", "fork", "T1", 1),
        ("T0", "join", "T1", 2),
        ("T2", "acquire_try", "L1", 9),
        ("T1", "atomic_begin", "T1.tx", 3),
        ("T1", "atomic_begin", "B", 4),
        ("T1", "atomic_end", "B", 5),
        ("T1", "atomic_end", "T1.tx", 6),
        ("T3", "write", "V1", 0),
    ]


def test_mapping_numbers_and_versions_every_event(mapped):
    """The converted events are numbered 0, 1, 2, ... and carry the current format version."""
    evs = mapped
    assert [e[s.SEQ] for e in evs] == list(range(len(evs)))
    assert all(e[s.TL] == s.FORMAT_VERSION for e in evs)


def test_mapping_names_the_file_the_thread_and_a_textual_location(mapped):
    """Events name the STD file and the STD thread; a location that is no number is the func."""
    evs = mapped
    assert evs[0][s.FILE] == "t.std" and evs[0][s.THREAD] == "T1"
    assert evs[-1][s.FUNC] == "main.c:9"


def test_stats_count_skipped_lines(tmp_path):
    """Lines of skipped operations are counted per operation, and only the rest are written."""
    src = tmp_path / "t.std"
    src.write_text("T1|enter(M)|1\nT1|w(V)|2\nT1|exit(M)|3\n")
    stats = StdStats()
    assert convert_std(src, tmp_path / "o.jsonl", stats=stats) == 1
    assert stats.skipped == {"enter": 1, "exit": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("T1 w V3\n", "line 1: expected THREAD|OP(ARG)|LOCATION"),
        ("T1|w(V3)|1\nT1|frobnicate(X)|2\n", "line 2: unknown STD operation 'frobnicate'"),
        ("T1|acq|1\n", "line 1: acq needs an argument"),
        ("T1|w(V3|1\n", "line 1: cannot read the operation"),
        ("T1|end|1\n", "line 1: end without a begin"),
    ],
)
def test_bad_input(tmp_path, text, message):
    """Malformed STD input raises StdError naming the line, and leaves no output file behind."""
    with pytest.raises(StdError, match=re.escape(message)):
        convert(tmp_path, text)
    assert not (tmp_path / "t.jsonl").exists()
    assert not (tmp_path / "t.jsonl.part").exists()


def test_binary_input(tmp_path):
    """A binary file given as STD raises StdError saying it is not a text file."""
    src = tmp_path / "b.std"
    src.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(StdError, match="not a text file"):
        convert_std(src, tmp_path / "o.jsonl")


@pytest.fixture
def races_findings(tmp_path) -> dict[str, list[dict]]:
    """Each predictive analysis's rows on races.std, converted and loaded, by analysis name."""
    out = tmp_path / "races.jsonl"
    convert_std(DATA / "races.std", out)
    trace = load(out)
    t = tables(trace.events, cache=False)
    return {
        a.__name__: a(t, trace.events).to_dicts()
        for a in (data_race, inconsistent_locking, lock_order_inversion, deadlock)
    }


def test_convert_std_counts_the_events_it_wrote(tmp_path):
    """convert_std returns the number of events it wrote: 32 for races.std."""
    out = tmp_path / "races.jsonl"
    assert convert_std(DATA / "races.std", out) == 32


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("data_race", [("V4", (40, 50))]),
        ("inconsistent_locking", [("V3", (30, 54)), ("V4", (40, 50))]),
        ("lock_order_inversion", [("L1 -> L2 -> L1", (60, 61, 70, 71))]),
        ("deadlock", []),
    ],
)
def test_whole_pipeline_finds_the_known_races(races_findings, kind, expected):
    """Each analysis finds on races.std exactly the known variables at the known lines."""
    got = races_findings

    def summary(kind):
        return sorted((f["var"], tuple(x["line"] for x in f["sites"])) for f in got[kind])

    assert summary(kind) == expected


def test_whole_pipeline_explains_the_race_by_std_thread(races_findings):
    """The race on races.std names threads T1 and T2 and explains T2's write at its line."""
    (race,) = races_findings["data_race"]
    assert race["units"] == ["T1", "T2"]
    assert race["explanation"].startswith("write at races.std:50 by thread T2")


def test_deadlocked_std_trace(tmp_path):
    """Two STD threads each requesting the other's lock are one deadlock at all four lines."""
    src = tmp_path / "dl.std"
    src.write_text("T1|acq(L1)|1\nT2|acq(L2)|2\nT1|req(L2)|3\nT2|req(L1)|4\n")
    convert_std(src, tmp_path / "dl.jsonl")
    events = load(tmp_path / "dl.jsonl").events
    rows = deadlock(tables(events, cache=False), events).to_dicts()
    (f,) = [r for r in rows if r["kind"] == "deadlock"]  # after its lock-order inversion
    assert set(f["units"]) == {"T1", "T2"}
    assert sorted(x["line"] for x in f["sites"]) == [1, 2, 3, 4]


def test_cli_import_std(tmp_path):
    """import-std writes the trace and reports the events written and the lines skipped."""
    from typer.testing import CliRunner

    from tracelens.cli import app

    out = tmp_path / "o.jsonl"
    r = CliRunner().invoke(app, ["import-std", str(DATA / "races.std"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote 32 events" in r.output and "enter 1" in r.output
    assert len(out.read_bytes().splitlines()) == 32


@pytest.mark.parametrize("text", ["T1|frob(X)|1\n", None])
def test_cli_import_std_bad_input_exits_2(tmp_path, text):
    """import-std on bad or missing input prints a one-line error and exits 2."""
    from typer.testing import CliRunner

    from tracelens.cli import app

    src = tmp_path / "bad.std"
    if text is not None:
        src.write_text(text)
    r = CliRunner().invoke(app, ["import-std", str(src), "-o", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and "tracelens: error:" in r.output
    assert "Traceback" not in r.output
