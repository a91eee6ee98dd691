"""What an emitted test costs: the plan forced in pytest's own process, in a child that
imports the function, or on the program run as a command.

    python benchmarks/emit_test.py [--repeat R]

Records the article's racy program, lets ``tracelens reproduce --emit-test`` write its
test (the in-process form), derives the child form (``in_process=False``) and the
command form from it, and runs each as a whole ``pytest`` command in a fresh process,
alternating, R times. Prints per form the median wall seconds and CPU seconds (the
pytest process and its children), their ratios to the in-process form, and the load
average before and after. Every run must fail (the race is there).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RACY = ROOT / "examples" / "article_racy.py"


def _tracelens(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracelens", *args], cwd=cwd, capture_output=True, text=True
    )


def _forms(tmp: Path) -> dict[str, Path]:
    shutil.copyfile(RACY, tmp / "app.py")
    _tracelens("run", "-o", "racy.jsonl", "--", "app.py", cwd=tmp)
    emitted = tmp / "test_in_process.py"
    done = _tracelens(
        "reproduce", "racy.jsonl", "--finding", "1", "--emit-test", emitted.name, "--", "app.py",
        cwd=tmp,
    )  # fmt: skip
    text = emitted.read_text(encoding="utf-8")
    if "in_process=True" not in text:
        raise SystemExit(f"the emitted test is not the in-process form:\n{done.stdout}{text}")
    child = tmp / "test_child.py"
    child.write_text(text.replace("in_process=True", "in_process=False"), encoding="utf-8")
    command = tmp / "test_command.py"
    line = "call = Call.of(main, *('article_racy.jsonl',))"
    if line not in text:
        raise SystemExit(f"the emitted test does not call main as expected:\n{text}")
    as_command = text.replace(line, f"call = [{str(tmp / 'app.py')!r}]")
    command.write_text(as_command.replace("in_process=True", "in_process=False"), "utf-8")
    return {"in_process": emitted, "child": child, "command": command}


def _run(test: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test.name],
        cwd=test.parent,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 1:
        raise SystemExit(f"{test.name} did not fail on the race:\n{done.stdout}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    a = ap.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        forms = _forms(Path(tmp))
        got: dict[str, list[tuple[float, float]]] = {k: [] for k in forms}
        for _ in range(a.repeat):
            for name, test in forms.items():
                got[name].append(_run(test))
    wall = {k: statistics.median(w for w, _ in v) for k, v in got.items()}
    cpu = {k: statistics.median(c for _, c in v) for k, v in got.items()}
    for k in forms:
        print(
            f"{k:>10}: {wall[k]:6.2f} s wall, {cpu[k]:6.2f} s CPU (median of {a.repeat}); "
            f"x{wall[k] / wall['in_process']:.2f} wall, x{cpu[k] / cpu['in_process']:.2f} CPU"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
