"""A task that awaits a future another task completes is ordered after what came before."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.record.test_instrument import _found, _run

PROGRAM = """
import asyncio

shared = {{"x": 0}}


async def writer(fut):
    {writer}


async def reader(fut):
    await fut
    await asyncio.sleep(0)
    return shared["x"]


async def main():
    fut = asyncio.get_running_loop().create_future()
    r = asyncio.create_task(reader(fut))
    w = asyncio.create_task(writer(fut))
    await w
    print(await r)


asyncio.run(main())
"""

HANDS_OFF = 'shared["x"] = 1\n    fut.set_result(None)'
COMPLETES_FIRST = 'fut.set_result(None)\n    await asyncio.sleep(0)\n    shared["x"] = 1'


@pytest.mark.parametrize(("writer", "racy"), [(HANDS_OFF, False), (COMPLETES_FIRST, True)])
def test_a_future_completed_by_another_task_hands_off_what_was_written_before(
    tmp_path: Path, writer: str, racy: bool
) -> None:
    """Write then set_result is ordered before the awaiter's read; set_result then write is not."""
    found = _found(_run(tmp_path, PROGRAM.format(writer=writer)))
    assert any(v == "shared['x']" for _k, v in found) is racy
