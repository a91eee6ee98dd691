"""What the recorder promises about a trace, checked on real recordings and on the samples."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import env_with_path
from tracelens import schema as s
from tracelens.testing import order_fidelity, read_events

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = sorted((ROOT / "sample_logs").glob("*.jsonl.gz"))
COMMON = {s.TL, s.OP, s.SEQ, s.TS, s.PID, s.UNIT, s.TID, s.THREAD}


def test_racy_example_under_stress_records_reads_in_their_real_order(tmp_path):
    """In the article's racy run, every read's value is that of the latest recorded write."""
    trace = tmp_path / "racy.jsonl"
    env = env_with_path(ROOT)
    subprocess.run(
        [sys.executable, "examples/article_racy.py", str(trace)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )

    fidelity = order_fidelity(read_events(trace))

    # Reads that come before the first recorded write have nothing to be checked against.
    assert fidelity.checked >= 9_900
    assert fidelity.mismatches == []
    assert fidelity.checked == fidelity.consistent


def test_there_are_sample_logs():
    """sample_logs/ holds the traces the README and the golden tests use."""
    assert {"article_racy.jsonl.gz", "article_locked.jsonl.gz", "lazy_init.jsonl.gz"} <= {
        p.name for p in SAMPLES
    }


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda p: p.name)
def test_sample_logs_match_the_current_format(sample):
    """Every event of a sample has the current version, a known op and the fields it needs."""
    events = read_events(sample)

    assert events
    for e in events:
        assert e[s.TL] == s.FORMAT_VERSION
        assert e[s.OP] in s.OPS
        assert e.keys() >= COMMON, e
        if e[s.OP] in s.MEMORY_OPS:
            assert {s.VAR, s.FILE, s.LINE, s.FUNC} <= e.keys(), e
        elif e[s.OP] != s.Op.META:
            assert {s.OBJ, s.KIND, s.FILE, s.LINE, s.FUNC} <= e.keys(), e
