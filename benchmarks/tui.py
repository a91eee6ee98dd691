"""How long does ``tracelens tui`` take to open a big trace? Headless, end to end.

    python benchmarks/tui.py [--events 1000000] [--trace FILE] [--repeat 1] [--cache]

Generates a synthetic trace with ``tests/tracegen.py`` (16 threads, a few racy
variables) unless ``--trace`` is given, then runs the app headless (textual's
Pilot) and reports, from the app's start:

  tables      the main screen is up with the summary and the variables table filled
              (the trace is loaded; the UI is usable from here on)
  findings    the analysis finished and the findings table is filled
  timeline    Enter on the first finding: its variable's timeline is drawn

Without ``--cache`` the trace is parsed every time (a first open); with it, the app
reads through the analyzer's Parquet cache, which a first (untimed) open fills (a
reopen of an unchanged trace).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def _open(trace: Path, cache: bool) -> dict[str, float]:
    from tracelens.tui.app import make_app
    from tracelens.tui.screens.main import MainScreen
    from tracelens.tui.screens.timeline import TimelineScreen

    marks: dict[str, float] = {}
    t0 = time.perf_counter()
    app = make_app(trace, cache=cache)
    async with app.run_test(size=(160, 48)) as pilot:
        while not isinstance(app.screen, MainScreen):
            if app.error:
                raise SystemExit(f"cannot open {trace}: {app.error}")
            await asyncio.sleep(0.01)
        await pilot.pause()
        marks["tables"] = time.perf_counter() - t0
        while not app.model.analysed:
            await asyncio.sleep(0.01)
        await pilot.pause()
        marks["findings"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        if app.model.findings:
            await pilot.press("enter")
            while not isinstance(app.screen, TimelineScreen):
                await asyncio.sleep(0.01)
            await pilot.pause()
            marks["timeline"] = time.perf_counter() - t1
    return marks


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--trace", type=Path, help="an existing trace (skips generating one)")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--cache", action="store_true", help="time reopening through the cache")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        trace = args.trace
        if trace is None:
            from tests import tracegen

            trace = Path(tmp) / "trace.jsonl"
            t = time.perf_counter()
            info = tracegen.generate(trace, n_events=args.events, threads=16)
            print(
                f"generated {info.events:,} events in {time.perf_counter() - t:.1f}s "
                f"({trace.stat().st_size / 1e6:.0f} MB)"
            )
        if args.cache:
            asyncio.run(_open(trace, True))  # fills the cache
        runs = [asyncio.run(_open(trace, args.cache)) for _ in range(args.repeat)]
    for key in ("tables", "findings", "timeline"):
        values = [r[key] for r in runs if key in r]
        if values:
            print(f"{key:>9}: {statistics.median(values):6.2f}s")


if __name__ == "__main__":
    main()
