"""An optional Parquet cache of loaded traces, for repeated reports and the TUI.

Polars reads Parquet an order of magnitude faster than JSON lines, so the second
``load_cached`` of the same files costs a fraction of the first. A cache entry is keyed
by the files' resolved paths, sizes and modification times (and the trace format and
cache versions): a file that changed, grew or moved is read again. Entries live in a
``.tracelens-cache`` directory next to the first file unless ``cache_dir`` says
otherwise; a cache that cannot be written is skipped silently (the load still works).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Final

import polars as pl

from tracelens import schema as s
from tracelens.analyze.load import LoadStats, Progress, Trace, expand_paths, load
from tracelens.analyze.options import LOAD_DEFAULT, LoadOptions

__all__ = ["CACHE_DIR_NAME", "cache_key", "load_cached"]

CACHE_DIR_NAME: Final = ".tracelens-cache"
_CACHE_VERSION: Final = 2  # 2: float values as written ("1.0", not "1")


def cache_key(files: Sequence[Path]) -> str:
    """A key that changes when any file changes (path, size, modification time)."""
    h = hashlib.sha256(f"{_CACHE_VERSION}:{s.FORMAT_VERSION}".encode())
    for f in files:
        st = f.stat()
        h.update(f"\0{f.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return h.hexdigest()[:24]


def load_cached(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    progress: Progress | None = None,
    options: LoadOptions = LOAD_DEFAULT,
) -> Trace:
    """``load``, through a Parquet cache.

    Args:
        paths: As for ``load``.
        cache_dir: Where entries live (default: ``.tracelens-cache`` next to the first file).
        progress: As for ``load`` (called only when the files are actually read).
        options: As for ``load`` (used only when the files are actually read).

    Returns:
        The trace, equal to what ``load`` returns.

    Raises:
        TraceError: As ``load``.
    """
    files = expand_paths(paths)
    where = Path(cache_dir) if cache_dir is not None else files[0].parent / CACHE_DIR_NAME
    key = cache_key(files)
    data, meta = where / f"{key}.parquet", where / f"{key}.json"
    if data.is_file() and meta.is_file():
        try:
            stats = LoadStats(**json.loads(meta.read_text()))
            stats.malformed_examples = [tuple(e) for e in stats.malformed_examples]  # type: ignore[misc]
            # Read eagerly: analyses scan the events several times.
            events = pl.read_parquet(data)
            return Trace(events=events.lazy(), stats=stats, paths=files)
        except (OSError, ValueError, TypeError, pl.exceptions.PolarsError):
            pass  # a damaged entry: load again and overwrite it
    trace = load(files, progress=progress, options=options)
    try:
        where.mkdir(parents=True, exist_ok=True)
        tmp = data.with_suffix(".parquet.tmp")
        trace.events.collect().write_parquet(tmp)
        os.replace(tmp, data)  # readers never see half an entry
        meta.write_text(json.dumps(asdict(trace.stats)))
    except OSError:
        pass  # a read-only place: no cache, same result
    return trace
