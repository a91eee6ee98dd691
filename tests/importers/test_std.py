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


def test_mapping(tmp_path):
    evs = convert(
        tmp_path,
        "T1|w(V3)|345\nT2|acq(L17)|120\nT2|rel(L17)|121\nT1|r(V3)|7\nT0|fork(T1)|1\n"
        "T0|join(T1)|2\nT2|req(L1)|9\nT1|begin|3\nT1|begin(B)|4\nT1|end|5\nT1|end|6\n"
        "T1|enter(M)|8\nT1|exit(M)|8\nT1|branch|8\nT1|dummy(x)|8\nT3|w(V1)|main.c:9\n",
    )
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
    assert [e[s.SEQ] for e in evs] == list(range(len(evs)))
    assert evs[0][s.FILE] == "t.std" and evs[0][s.THREAD] == "T1"
    assert evs[-1][s.FUNC] == "main.c:9"
    assert all(e[s.TL] == s.FORMAT_VERSION for e in evs)


def test_stats_count_skipped_lines(tmp_path):
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
    with pytest.raises(StdError, match=re.escape(message)):
        convert(tmp_path, text)
    assert not (tmp_path / "t.jsonl").exists()
    assert not (tmp_path / "t.jsonl.part").exists()


def test_binary_input(tmp_path):
    src = tmp_path / "b.std"
    src.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(StdError, match="not a text file"):
        convert_std(src, tmp_path / "o.jsonl")


def test_whole_pipeline_finds_the_known_races(tmp_path):
    out = tmp_path / "races.jsonl"
    assert convert_std(DATA / "races.std", out) == 32
    trace = load(out)
    t = tables(trace.events, cache=False)
    got = {
        a.__name__: a(t, trace.events).to_dicts()
        for a in (data_race, inconsistent_locking, lock_order_inversion, deadlock)
    }

    def summary(kind):
        return sorted((f["var"], tuple(x["line"] for x in f["sites"])) for f in got[kind])

    assert summary("data_race") == [("V4", (40, 50))]
    assert summary("inconsistent_locking") == [("V3", (30, 54)), ("V4", (40, 50))]
    assert summary("lock_order_inversion") == [("L1 -> L2 -> L1", (60, 61, 70, 71))]
    assert got["deadlock"] == []
    (race,) = got["data_race"]
    assert race["units"] == ["T1", "T2"]
    assert race["explanation"].startswith("write at races.std:50 by thread T2")


def test_deadlocked_std_trace(tmp_path):
    src = tmp_path / "dl.std"
    src.write_text("T1|acq(L1)|1\nT2|acq(L2)|2\nT1|req(L2)|3\nT2|req(L1)|4\n")
    convert_std(src, tmp_path / "dl.jsonl")
    events = load(tmp_path / "dl.jsonl").events
    (f,) = deadlock(tables(events, cache=False), events).to_dicts()
    assert set(f["units"]) == {"T1", "T2"}
    assert sorted(x["line"] for x in f["sites"]) == [1, 2, 3, 4]


def test_cli_import_std(tmp_path):
    from typer.testing import CliRunner

    from tracelens.cli import app

    out = tmp_path / "o.jsonl"
    r = CliRunner().invoke(app, ["import-std", str(DATA / "races.std"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert "wrote 32 events" in r.output and "enter 1" in r.output
    assert len(out.read_bytes().splitlines()) == 32


@pytest.mark.parametrize("text", ["T1|frob(X)|1\n", None])
def test_cli_import_std_bad_input_exits_2(tmp_path, text):
    from typer.testing import CliRunner

    from tracelens.cli import app

    src = tmp_path / "bad.std"
    if text is not None:
        src.write_text(text)
    r = CliRunner().invoke(app, ["import-std", str(src), "-o", str(tmp_path / "o.jsonl")])
    assert r.exit_code == 2
    assert r.output.count("\n") == 1 and "tracelens: error:" in r.output
    assert "Traceback" not in r.output
