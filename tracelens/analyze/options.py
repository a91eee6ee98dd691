"""The analyses' and the loader's switches and tuning limits, each passed as one value.

The limits choose between two ways of computing the same result (vectorised tables
or a row-by-row test, all at once or in batches, side by side or one after another):
they change time and memory, never the findings. Tests set them low to take the
other path on small traces; the defaults fit 10M events in 6 GB on two cores.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

__all__ = ["DEFAULT", "LOAD_DEFAULT", "LoadOptions", "Options"]


@dataclass(frozen=True, slots=True)
class Options:
    """How the analyses run.

    Attributes:
        internal_locks: Count locks created by the standard library for its own use
            (a ``Condition``'s or ``Queue``'s, marked ``internal``) in held lock sets,
            the lock-order graph and the final lock holders. Happens-before always
            follows them.
        max_cycle: Longest cycle (number of locks) ``lock_order_inversion`` looks for.
        parallel_max_events: Traces with up to this many events run their analyses
            side by side in threads; bigger ones one after the other (memory).
        max_mask_locks: Up to this many distinct locks, held lock sets are bit masks
            computed in polars; beyond, a Python walk tracks them.
        mask_word_bits: Bits of a held-lock mask per Int64 word (63: the sign bit
            stays clear).
        max_lockset_pairs_sets: Up to this many distinct held lock sets, whether two
            share a lock is looked up in a table of all disjoint pairs; beyond, the two
            sets are intersected row by row (the table grows with the square).
        batch_accesses: ``inconsistent_locking`` checks the pairs of this many
            accesses' variables at a time (memory bound).
    """

    internal_locks: bool = True
    max_cycle: int = 4
    parallel_max_events: int = 4_000_000
    max_mask_locks: int = 16 * 63
    mask_word_bits: int = 63
    max_lockset_pairs_sets: int = 512
    batch_accesses: int = 500_000

    def parallel(self, events: int) -> bool:
        """Whether analyses of a trace with ``events`` events run side by side."""
        return events <= self.parallel_max_events


#: The options ``analyze()`` uses unless told otherwise.
DEFAULT: Final = Options()


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How ``load`` reads files (limits that change time and memory, never the events).

    Attributes:
        chunk_bytes: Bytes per chunk of the careful reader (whole lines; the last
            partial line carries over).
        fast_path_max_bytes: Larger files skip ``scan_ndjson``, which maps the whole
            file and holds parse buffers for all of it (about 3x the file in RSS on
            polars 2.1), where reading in chunks holds one chunk at a time.
        low_memory_sort_rows: Traces with more events are sorted column by column
            (slower, less memory).
        max_line_bytes: The longest line the careful reader takes; a longer one (a
            file without newlines, say) is an error naming its file and line, not a
            line held whole in memory.
    """

    chunk_bytes: int = 32 << 20
    fast_path_max_bytes: int = 768 << 20
    low_memory_sort_rows: int = 3_000_000
    max_line_bytes: int = 64 << 20


#: The options ``load()`` uses unless told otherwise.
LOAD_DEFAULT: Final = LoadOptions()
