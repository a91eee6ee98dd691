"""A session cache filled across an ``await``: two tasks lose an update (asyncio).

Each task reads the counter, awaits (a database call, say), then writes it back:
the other task runs in between, so one increment is lost. ``--fixed`` holds an
``asyncio.Lock`` across the read, the await and the write.

    python examples/async_lost_update.py [--fixed] [TRACE]   # default: async_lost_update.jsonl
    tracelens report TRACE
"""

from __future__ import annotations

import asyncio
import sys

import tracelens


async def main(fixed: bool) -> None:
    stats = tracelens.watch({"hits": 0}, "stats")
    lock = asyncio.Lock()

    async def record_hit() -> None:
        if fixed:
            async with lock:
                hits = stats["hits"]
                await asyncio.sleep(0.001)  # the await where another task runs
                stats["hits"] = hits + 1
        else:
            hits = stats["hits"]
            await asyncio.sleep(0.001)
            stats["hits"] = hits + 1

    await asyncio.gather(*(record_hit() for _ in range(5)))
    print(f"hits = {stats['hits']} (expected 5)")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--fixed"]
    tracelens.configure(args[0] if args else "async_lost_update.jsonl")
    asyncio.run(main("--fixed" in sys.argv))
    tracelens.shutdown()
