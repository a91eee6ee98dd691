"""Re-record every trace in sample_logs/ from the programs in examples/.

    python sample_logs/regenerate.py

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
}


def relativize(data: bytes) -> bytes:
    """Make call sites under the repository relative to it (Python records them absolute)."""
    return data.replace(b'"file":"' + str(ROOT).encode() + b"/", b'"file":"')


def main() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for script, name in SAMPLES.items():
        with tempfile.TemporaryDirectory() as tmp:
            trace = Path(tmp) / "trace.jsonl"
            subprocess.run([sys.executable, script, str(trace)], cwd=ROOT, env=env, check=True)
            data = relativize(trace.read_bytes())
        # mtime=0: the same trace gives the same bytes.
        (OUT / name).write_bytes(gzip.compress(data, mtime=0))
        print(f"{name}: {len(data.splitlines())} lines")


if __name__ == "__main__":
    main()
