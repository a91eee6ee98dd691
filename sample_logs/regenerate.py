"""Re-record every trace in sample_logs/ from the programs in examples/.

    python sample_logs/regenerate.py             # all of them
    python sample_logs/regenerate.py NAME ...    # some: queue_handoff.jsonl.gz ...

Run from anywhere. Call sites under the repository are stored relative to it
(examples/...), so that the samples read the same on every machine and checkout.
Traces are gzipped.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "sample_logs"

#: example script -> sample trace name
SAMPLES = {
    "examples/article_racy.py": "article_racy.jsonl.gz",
    "examples/article_locked.py": "article_locked.jsonl.gz",
    "examples/lazy_init.py": "lazy_init.jsonl.gz",
    "examples/async_lost_update.py": "async_lost_update.jsonl.gz",
    "examples/pool_counter.py": "pool_counter.jsonl.gz",
    "examples/queue_handoff.py": "queue_handoff.jsonl.gz",
    "examples/condition_buffer.py": "condition_buffer.jsonl.gz",
    "examples/event_handoff.py": "event_handoff.jsonl.gz",
    "examples/dict_iteration.py": "dict_iteration.jsonl.gz",
}


def relativize(data: bytes) -> bytes:
    """Make call sites under the repository relative to it (Python records them absolute)."""
    return data.replace(b'"file":"' + str(ROOT).encode() + b"/", b'"file":"')


def main(names: list[str]) -> None:
    unknown = set(names) - set(SAMPLES.values())
    if unknown:
        sys.exit(f"unknown sample(s): {', '.join(sorted(unknown))}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for script, name in SAMPLES.items():
        if names and name not in names:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            trace = Path(tmp) / "trace.jsonl"
            subprocess.run([sys.executable, script, str(trace)], cwd=ROOT, env=env, check=True)
            data = relativize(trace.read_bytes())
        # mtime=0: the same trace gives the same bytes.
        (OUT / name).write_bytes(gzip.compress(data, mtime=0))
        print(f"{name}: {len(data.splitlines())} lines")


if __name__ == "__main__":
    main(sys.argv[1:])
