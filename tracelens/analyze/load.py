"""Load traces: JSON-lines files (plain or gzip, globs, several processes) into polars.

How a file is read (see ``docs/analysis.md``):

1. Fast path (files up to ``LoadOptions.fast_path_max_bytes``): ``pl.scan_ndjson`` with an
   explicit schema (``RAW_SCHEMA``). An explicit schema is faster than inference and
   makes JSON numbers in ``value`` come back as text. It handles application log
   lines (JSON objects without ``tl``: their ``tl`` is null) but raises on anything
   that is not a JSON object of the right types.
2. Fallback, for a file the fast path rejects, gzip files and large files: the file is
   read in chunks of whole lines, each parsed by ``pl.read_ndjson``. A chunk that
   raises is split into lines; lines that cannot be JSON objects (no ``{`` ... ``}``)
   are counted as malformed at once, the rest go back to ``read_ndjson`` and a
   failing group is bisected down to the bad lines. So a file with a few bad lines
   costs a few extra parses of small groups, not a Python loop over its events.

Both take float ``value`` tokens from the lines as written (polars reformats them), in a
second pass over the lines; the careful path skips it for a chunk in which a byte search
finds no possible token.

Every event is then checked (required fields present, known format version), units
are qualified with their pid when the trace holds several processes, and the result
is sorted by ``(pid, seq)``.
"""

from __future__ import annotations

import bisect
import glob
import io
import itertools
import mmap
import os
import re
import stat
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import polars as pl

from tracelens import schema as s
from tracelens.analyze import columns as c
from tracelens.analyze.columns import EVENT_SCHEMA
from tracelens.analyze.options import LOAD_DEFAULT, LoadOptions
from tracelens.exceptions import TraceError

__all__ = ["EVENT_SCHEMA", "RAW_SCHEMA", "LoadStats", "Trace", "expand_paths", "load"]

#: How many malformed lines are reported with file and line number.
MAX_EXAMPLES: Final = 5
#: The largest ``seq`` and ``pid`` a trace may hold: the global order key
#: (``columns.global_order``) packs both into one Int64.
MAX_SEQ: Final = (1 << c.ORDER_SHIFT) - 1
MAX_PID: Final = (1 << (63 - c.ORDER_SHIFT)) - 1
#: Groups of at most this many lines that fail to parse are parsed line by line.
_BISECT_LEAF: Final = 32

#: The fields read from each line, with their types (``value`` as text: numbers,
#: booleans and strings all become its text).
RAW_SCHEMA: Final = pl.Schema(
    {
        s.TL: pl.Int64,
        s.OP: pl.String,
        s.SEQ: pl.Int64,
        s.TS: pl.Int64,
        s.PID: pl.Int64,
        s.UNIT: pl.String,
        s.TID: pl.Int64,
        s.THREAD: pl.String,
        s.TASK: pl.String,
        s.VAR: pl.String,
        s.OBJ: pl.String,
        s.KIND: pl.String,
        s.VALUE: pl.String,
        s.FILE: pl.String,
        s.LINE: pl.Int64,
        s.FUNC: pl.String,
        s.WAIT_NS: pl.Int64,
        s.MSG: pl.Int64,
        s.COUNT: pl.Int64,
        s.INTERNAL: pl.Boolean,
        s.STACK: pl.Int64,
        s.STACK_ID: pl.Int64,
        s.STACK_PARENT: pl.Int64,
    }
)

_LINE_NO: Final = "__line"  # line number of a raw row in its file (1-based)
#: A float ``value`` as written: a JSON number with a fraction or an exponent. Polars reads
#: a number into a String column through its own float formatting (``1.0`` -> ``"1"``,
#: ``1.5e-7`` -> ``"0.00000015"``), so such tokens are taken from the line itself. Inside a
#: JSON string a quote is escaped, so ``"value":`` there never matches.
_FLOAT_VALUE: Final = r'"value"\s*:\s*(-?[0-9]+(?:\.[0-9]+(?:[eE][-+]?[0-9]+)?|[eE][-+]?[0-9]+))'
#: A cheap test that comes before the token pass: bytes that may hold a ``_FLOAT_VALUE``
#: match (every match is one of these; polars' ``\s`` is Unicode white space, whose
#: characters are ASCII white space or bytes >= 0x80 in UTF-8). Most traces hold no float
#: value, and one search of a chunk already in memory costs less than cutting it into
#: lines. (Not on the fast path: there the token pass runs beside the typed read, and a
#: search of the mapped file plus a line count cost as much CPU and more memory.)
_FLOAT_HINT: Final = re.compile(rb'"value"(?:\s|[\x80-\xff])*:(?:\s|[\x80-\xff])*-?[0-9]+[.eE]')
_GZIP_MAGIC: Final = b"\x1f\x8b"


@dataclass
class LoadStats:
    """What loading saw.

    Attributes:
        files: The files read, in the order read.
        lines: Non-blank lines read (events + application lines + malformed).
        events: Tracelens events kept.
        app_lines: JSON lines without ``tl`` (the application's own log lines).
        malformed: Lines that are not valid tracelens events (skipped).
        malformed_examples: The first few malformed lines: (file, line number, reason).
        duplicates: Events dropped because an identical event with the same ``pid``
            and ``seq`` came first (the same trace given twice, say).
        duplicate_files: How many files the dropped duplicates came from.
    """

    files: list[str] = field(default_factory=list)
    lines: int = 0
    events: int = 0
    app_lines: int = 0
    malformed: int = 0
    malformed_examples: list[tuple[str, int, str]] = field(default_factory=list)
    duplicates: int = 0
    duplicate_files: int = 0

    @property
    def skipped(self) -> int:
        """Lines not analysed: application lines and malformed lines."""
        return self.app_lines + self.malformed

    def _bad(self, file: str, line_no: int, reason: str, n: int = 1) -> None:
        self.malformed += n
        if len(self.malformed_examples) < MAX_EXAMPLES:
            self.malformed_examples.append((file, line_no, reason))


@dataclass
class Trace:
    """A loaded trace.

    Attributes:
        events: The events, columns ``EVENT_SCHEMA``, sorted by ``(pid, seq)``.
        stats: Counts of what was read and skipped.
        paths: The files read.
        stacks: The frames of the events' call stacks, columns ``STACK_SCHEMA`` (an
            event's ``stack`` is its innermost frame's ``id`` in its ``pid``).
    """

    events: pl.LazyFrame
    stats: LoadStats
    paths: list[Path]
    stacks: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=c.STACK_SCHEMA))


Progress = Callable[[int, int], None]


def load(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    progress: Progress | None = None,
    options: LoadOptions = LOAD_DEFAULT,
) -> Trace:
    """Load one or more trace files into a ``Trace``.

    Args:
        paths: A file, a glob pattern, or a sequence of them. Plain or gzip files
            (recognised by content, not name).
        progress: Called as ``progress(bytes_done, bytes_total)`` while reading
            (on-disk bytes), for a progress bar.
        options: The reader's limits (``LoadOptions``).

    Returns:
        The trace: events sorted by ``(pid, seq)``, and load statistics.

    Raises:
        TraceError: A file is missing or unreadable, a glob matches nothing, the
            trace has a newer format version, two different events share a ``pid``
            and ``seq``, or there are no events at all.
    """
    files = expand_paths(paths)
    sizes = [_size(f) for f in files]
    total = sum(sizes)
    stats = LoadStats(files=[str(f) for f in files])
    frames: list[pl.LazyFrame] = []
    stacks: list[pl.DataFrame] = []
    done = 0
    for f, size in zip(files, sizes, strict=True):

        def file_progress(n: int, _base: int = done) -> None:
            if progress is not None:
                progress(_base + n, total)

        # No name kept for the raw rows: the lazy frame is their only owner, so that the
        # column-wise sort in ``_finish`` frees each unsorted column as it goes.
        raw = _read_file(f, stats, file_progress, options)
        raw, frames_of_stacks = _stacks_of(raw)
        stacks.append(frames_of_stacks)
        frames.append(_events_of(raw, str(f), stats))
        del raw
        done += size
        if progress is not None:
            progress(done, total)

    # Parse errors are found before type errors: show the examples in file order.
    order = {f: i for i, f in enumerate(stats.files)}
    stats.malformed_examples.sort(key=lambda ex: (order.get(ex[0], 0), ex[1]))
    events = _finish(frames, stats, options.low_memory_sort_rows) if frames else _empty()
    stats.events = events.height
    if stats.events == 0:
        where = str(files[0]) if len(files) == 1 else f"{len(files)} files"
        detail = f"{stats.lines} lines: {stats.app_lines} application, {stats.malformed} malformed"
        raise TraceError(f"no tracelens events in {where} ({detail})")
    stack_table = pl.concat(stacks, how="vertical").unique(maintain_order=True)
    return Trace(events=events.lazy(), stats=stats, paths=files, stacks=stack_table)


# --- files -----------------------------------------------------------------------------


def expand_paths(paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> list[Path]:
    """The trace files that paths and glob patterns name, each once, in order.

    Raises:
        TraceError: Nothing given, a pattern matches nothing, or a path is missing,
            a directory, not a regular file (a FIFO, socket or device: checked
            before anything opens it, so a FIFO cannot block) or unreadable (the
            message says which).
    """
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not items:
        raise TraceError("no trace files given")
    out: list[Path] = []
    seen: set[Path] = set()
    for item in items:
        text = os.fspath(item)
        if glob.has_magic(text) and not os.path.exists(text):
            matches = sorted(glob.glob(text, recursive=True))
            if not matches:
                raise TraceError(f"no file matches {text}")
        else:
            matches = [text]
        for m in matches:
            p = Path(m)
            try:
                mode = os.stat(p).st_mode  # before any open: a FIFO would block it
            except FileNotFoundError:
                raise TraceError(f"cannot read {m}: no such file") from None
            except OSError as e:
                raise TraceError(f"cannot read {m}: {e.strerror or e}") from None
            if stat.S_ISDIR(mode):
                raise TraceError(f"{m} is a directory, not a trace file")
            if not stat.S_ISREG(mode):
                raise TraceError(f"{m} is a {_file_type(mode)}, not a regular trace file")
            if not os.access(p, os.R_OK):
                raise TraceError(f"cannot read {m}: permission denied")
            key = p.resolve()
            if key not in seen:  # a file named twice (or by two globs) is read once
                seen.add(key)
                out.append(p)
    return out


def _file_type(mode: int) -> str:
    """What a non-regular file is, in words (``expand_paths``' message)."""
    for test, name in (
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
    ):
        if test(mode):
            return name
    return "special file"


def _size(p: Path) -> int:
    try:
        return p.stat().st_size
    except OSError as e:
        raise TraceError(f"cannot read {p}: {e.strerror or e}") from None


def _is_gzip(p: Path) -> bool:
    try:
        with open(p, "rb") as fh:
            return fh.read(2) == _GZIP_MAGIC
    except OSError as e:
        raise TraceError(f"cannot read {p}: {e.strerror or e}") from None


def _read_file(
    p: Path, stats: LoadStats, progress: Callable[[int], None], options: LoadOptions
) -> pl.DataFrame:
    """Read one file's lines into ``RAW_SCHEMA`` rows plus their line numbers."""
    if (
        not _is_gzip(p)
        and not glob.has_magic(str(p))  # polars would take the name as a pattern
        and _size(p) <= options.fast_path_max_bytes
        and not _may_have_long_line(p, options.max_line_bytes)
    ):
        try:
            # The events and the float tokens of the lines, read side by side.
            raw, token_frame = pl.collect_all(
                [pl.scan_ndjson(p, schema=RAW_SCHEMA), pl.scan_lines(p).select(_float_token())]
            )
            # No malformed line, so rows are the non-blank lines (``scan_ndjson`` skips
            # blank ones, which the recorder never writes).
            tokens = token_frame.to_series()
            if tokens.len() == raw.height:
                line_no: pl.Expr | pl.Series = pl.int_range(
                    1, raw.height + 1, dtype=pl.Int64
                ).alias(_LINE_NO)
            else:  # blank lines: number the others
                lines = (
                    pl.scan_lines(p, row_index_name=_LINE_NO, row_index_offset=1)
                    .filter(pl.col("line").str.contains(r"\S"))
                    .select(pl.col(_LINE_NO).cast(pl.Int64), _float_token())
                    .collect()
                )
                line_no, tokens = lines[_LINE_NO], lines[_FLOAT]
        except (pl.exceptions.PolarsError, OSError, ValueError):
            pass  # a bad line somewhere: read it the careful way
        else:
            if tokens.len() == raw.height:
                stats.lines += raw.height
                return _exact_floats(raw.with_columns(line_no), tokens)
    return _read_careful(p, stats, progress, options.chunk_bytes, options.max_line_bytes)


_FLOAT: Final = "__float"


def _float_token() -> pl.Expr:
    return pl.col("line").str.extract(_FLOAT_VALUE, 1).alias(_FLOAT)


def _float_tokens(chunk: bytes) -> pl.Series | None:
    """The float ``value`` token of each line of ``chunk`` (null where none); ``None``
    when no line can hold one (``_FLOAT_HINT``)."""
    if _FLOAT_HINT.search(chunk) is None:
        return None
    return pl.scan_lines(chunk).select(_float_token()).collect().to_series()


def _exact_floats(df: pl.DataFrame, tokens: pl.Series | None) -> pl.DataFrame:
    """Replace polars' text of float values by the tokens as written (``1.0``, not ``1``).

    ``tokens`` holds one entry per row of ``df`` (``None``: no row has a float value). A
    token is used only where it is the same number as the parsed value (a nested
    ``"value"`` key elsewhere on the line cannot slip in).
    """
    if tokens is None or tokens.len() != df.height or tokens.null_count() == tokens.len():
        return df  # no float values (or, never expected, rows that do not match lines)
    value = pl.col(s.VALUE)
    tok = pl.lit(tokens)
    same = tok.cast(pl.Float64, strict=False) == value.cast(pl.Float64, strict=False)
    return df.with_columns(pl.when(same).then(tok).otherwise(value).alias(s.VALUE))


def _may_have_long_line(p: Path, max_line_bytes: int) -> bool:
    """Whether ``p`` may hold a line longer than ``max_line_bytes`` (then the careful
    reader, which refuses one, reads it: ``scan_ndjson`` would hold several times a
    file without newlines in memory before failing).

    Every line that long covers one of the aligned windows of half that size, so it is
    enough to find a newline in each; in a normal file each search stops within its
    first page. ``True`` may also mean a line of only half the limit.
    """
    step = max(max_line_bytes // 2, 1)
    try:
        with open(p, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as m:
            return any(m.find(b"\n", start, start + step) < 0 for start in range(0, len(m), step))
    except (OSError, ValueError):  # an empty file cannot be mapped
        return False


def _read_careful(
    p: Path,
    stats: LoadStats,
    progress: Callable[[int], None],
    chunk_bytes: int,
    max_line_bytes: int,
) -> pl.DataFrame:
    name = str(p)
    frames: list[pl.DataFrame] = []
    first_line = 1
    rest = b""
    try:
        with open(p, "rb") as raw:
            gz = raw.read(2) == _GZIP_MAGIC
            raw.seek(0)
            for data in (
                _gunzip(raw, chunk_bytes) if gz else iter(lambda: raw.read(chunk_bytes), b"")
            ):
                block = rest + data
                cut = block.rfind(b"\n") + 1
                rest = block[cut:]
                if cut:
                    first_line = _parse_chunk(block[:cut], first_line, name, stats, frames)
                if len(rest) > max_line_bytes:  # no newline in sight: refuse, do not hoard
                    raise TraceError(
                        f"{name}:{first_line}: line longer than {max_line_bytes:,} bytes "
                        "(not a JSON-lines trace?)"
                    )
                progress(raw.tell())
    except (OSError, EOFError, zlib.error) as e:
        # A gzip file cut short (a killed recorder): keep what was decompressed.
        stats._bad(name, first_line, f"unreadable from here on: {e}")
    if rest.strip():
        _parse_chunk(rest, first_line, name, stats, frames, last_unterminated=True)
    if not frames:
        return pl.DataFrame(schema={**RAW_SCHEMA, _LINE_NO: pl.Int64})
    # No rechunk: the sort in ``_finish`` copies everything into one chunk anyway.
    return pl.concat(frames, how="vertical", rechunk=False)


def _gunzip(raw: io.BufferedReader, chunk_bytes: int) -> Iterator[bytes]:
    """Decompress gzip members (concatenated ones too), at most ``chunk_bytes`` at a time.

    Unlike ``GzipFile.read(n)``, which drops the ``n`` bytes it was decompressing when the
    stream ends early, everything decompressed before a cut is handed out; then
    ``EOFError``.
    """
    d = zlib.decompressobj(wbits=31)
    started = False  # has the current member begun?
    pending = b""
    while True:
        if not pending:
            pending = raw.read(chunk_bytes // 8)
            if not pending:
                break
        if not started:
            pending = pending.lstrip(b"\x00")  # padding after a member, as gzip allows
            if not pending:
                continue
            started = True
        out = d.decompress(pending, chunk_bytes)
        pending = d.unconsumed_tail
        if d.eof:  # end of a member: what follows is the next one
            pending, d, started = d.unused_data, zlib.decompressobj(wbits=31), False
        if out:
            yield out
    if started:
        raise EOFError("compressed file ended before the end-of-stream marker was reached")


def _parse_chunk(
    chunk: bytes,
    first_line: int,
    name: str,
    stats: LoadStats,
    frames: list[pl.DataFrame],
    *,
    last_unterminated: bool = False,
) -> int:
    """Parse whole lines; append rows to ``frames``; return the next line number."""
    n_lines = chunk.count(b"\n") + (0 if chunk.endswith(b"\n") else 1)
    next_line = first_line + n_lines
    try:
        df = pl.read_ndjson(io.BytesIO(chunk), schema=RAW_SCHEMA)
    except (pl.exceptions.PolarsError, ValueError):
        pass
    else:
        if df.height == n_lines:  # no blank lines: rows are lines
            stats.lines += df.height
            # shrink_to_fit: the parser's buffers are sized for the chunk, not the rows.
            df = df.with_columns(
                pl.int_range(first_line, next_line, dtype=pl.Int64).alias(_LINE_NO)
            ).shrink_to_fit()
            frames.append(_exact_floats(df, _float_tokens(chunk)))
            return next_line
    lines = chunk.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    # Careful: classify lines cheaply, then parse the candidates, bisecting failures.
    candidates: list[tuple[int, bytes]] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not stripped:
            continue
        stats.lines += 1
        if stripped[:1] == b"{" and stripped[-1:] == b"}":
            candidates.append((first_line + i, stripped))
        elif last_unterminated and i == len(lines) - 1:
            stats._bad(name, first_line + i, "truncated last line")
        else:
            stats._bad(name, first_line + i, _not_json_reason(stripped))
    _parse_lines(candidates, name, stats, frames)
    return next_line


def _not_json_reason(line: bytes) -> str:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return "binary data, not a JSON line"
    if line[:1] == b"{":
        return "truncated or invalid JSON object"
    return "not a JSON object"


def _parse_lines(
    lines: list[tuple[int, bytes]], name: str, stats: LoadStats, frames: list[pl.DataFrame]
) -> None:
    """Parse candidate lines in groups; bisect groups that fail down to the bad lines."""
    if not lines:
        return
    joined = b"\n".join(t for _, t in lines)
    try:
        df = pl.read_ndjson(io.BytesIO(joined), schema=RAW_SCHEMA)
    except (pl.exceptions.PolarsError, ValueError) as e:
        if len(lines) == 1:
            stats._bad(name, lines[0][0], _reason(e))
            return
    else:
        if df.height == len(lines):
            df = df.with_columns(pl.Series(_LINE_NO, [n for n, _ in lines], dtype=pl.Int64))
            frames.append(_exact_floats(df, _float_tokens(joined)))
            return
        if len(lines) == 1:  # e.g. two objects on one line
            stats._bad(name, lines[0][0], "invalid JSON")
            return
    if len(lines) <= _BISECT_LEAF:
        for item in lines:
            _parse_lines([item], name, stats, frames)
        return
    mid = len(lines) // 2
    _parse_lines(lines[:mid], name, stats, frames)
    _parse_lines(lines[mid:], name, stats, frames)


def _reason(e: Exception) -> str:
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    if "InvalidUtf8" in msg:
        return "binary data, not a JSON line"
    if "error parsing" in msg or "Syntax" in msg or "EOF" in msg:
        return "invalid JSON"
    if "cannot parse" in msg:
        return f"wrong type: {msg}"
    return msg


# --- events ----------------------------------------------------------------------------


def _stacks_of(raw: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Split a file's rows into the others and its stack definitions (``STACK_SCHEMA``).

    A definition without ``pid`` or ``id`` defines nothing and is dropped with the
    others; what it says is only shown, never trusted (an id may be missing, or its
    parents may loop: ``analyze.stacks`` stops there).
    """
    is_stack = pl.col(s.OP) == s.Op.STACK
    if raw.height == 0 or not raw.select((is_stack & pl.col(s.TL).is_not_null()).any()).item():
        return raw, pl.DataFrame(schema=c.STACK_SCHEMA)
    defs = raw.filter(is_stack & pl.col(s.TL).is_not_null() & pl.col(s.PID).is_not_null()).select(
        pl.col(s.PID).alias(c.PID),
        pl.col(s.STACK_ID).alias(c.STACK_ID),
        pl.col(s.STACK_PARENT).alias(c.STACK_PARENT),
        pl.col(s.FILE).alias(c.FILE),
        pl.col(s.LINE).alias(c.LINE),
        pl.col(s.FUNC).alias(c.FUNC),
    )
    rest = raw.filter(~is_stack.fill_null(False) | pl.col(s.TL).is_null())
    return rest, defs.filter(pl.col(c.STACK_ID).is_not_null())


def _events_of(raw: pl.DataFrame, name: str, stats: LoadStats) -> pl.LazyFrame:
    """Keep the valid tracelens events of one file's rows; count and report the rest.

    Counting looks at a few columns only; the full rows are filtered once, lazily, so
    that polars fuses the filter with the final sort.
    """
    if raw.height == 0:
        return _empty(line_no=True).lazy()
    tl = pl.col(s.TL)
    reason = (
        pl.when(tl < 1)
        .then(pl.lit("unknown trace format version"))
        .when(pl.col(s.OP).is_null())
        .then(pl.lit(f"missing field '{s.OP}'"))
        .when(pl.col(s.SEQ).is_null())
        .then(pl.lit(f"missing field '{s.SEQ}'"))
        .when(pl.col(s.PID).is_null())
        .then(pl.lit(f"missing field '{s.PID}'"))
        .when(pl.col(s.UNIT).is_null())
        .then(pl.lit(f"missing field '{s.UNIT}'"))
        .when(pl.col(s.OP).is_in(list(s.MEMORY_OPS)) & pl.col(s.VAR).is_null())
        .then(pl.lit(f"missing field '{s.VAR}'"))
        # the global order key packs both into one Int64 (``columns.global_order``)
        .when((pl.col(s.SEQ) < 0) | (pl.col(s.SEQ) > MAX_SEQ))
        .then(pl.lit(f"field '{s.SEQ}' out of range (0 to 2**{c.ORDER_SHIFT} - 1)"))
        .when((pl.col(s.PID) < 0) | (pl.col(s.PID) > MAX_PID))
        .then(pl.lit(f"field '{s.PID}' out of range (0 to 2**{63 - c.ORDER_SHIFT} - 1)"))
        .otherwise(None)
    )
    is_bad = tl.is_not_null() & reason.is_not_null()
    app, bad, newest = raw.select(
        tl.is_null().sum().alias("app"),
        is_bad.sum().alias("bad"),
        tl.filter(tl > s.FORMAT_VERSION).max().alias("newest"),
    ).row(0)
    if newest is not None:
        raise TraceError(
            f"{name} has trace format version {newest}, newer than this tracelens reads "
            f"(version {s.FORMAT_VERSION}): upgrade tracelens"
        )
    stats.app_lines += int(app)
    if bad:
        examples = raw.filter(is_bad).head(MAX_EXAMPLES).select(_LINE_NO, reason.alias("r"))
        for line_no, why in examples.iter_rows():
            stats._bad(name, line_no, why, n=0)
        stats.malformed += int(bad)
    lf = raw.lazy()
    if app or bad:  # a filter copies every column: only when there is something to drop
        lf = lf.filter(tl.is_not_null() & reason.is_null())
    return lf.select(
        pl.col(s.PID).alias(c.PID),
        pl.col(s.SEQ).alias(c.SEQ),
        pl.col(s.TS).alias(c.TS),
        pl.col(s.OP).alias(c.OP),
        pl.col(s.UNIT).alias(c.UNIT),
        pl.coalesce(s.TASK, s.THREAD, s.UNIT).alias(c.UNIT_NAME),
        pl.col(s.TID).alias(c.TID),
        pl.col(s.THREAD).alias(c.THREAD),
        pl.col(s.TASK).alias(c.TASK),
        pl.col(s.VAR).alias(c.VAR),
        pl.col(s.OBJ).alias(c.OBJ),
        pl.col(s.KIND).alias(c.KIND),
        pl.col(s.VALUE).alias(c.VALUE),
        pl.col(s.FILE).alias(c.FILE),
        pl.col(s.LINE).alias(c.LINE),
        pl.col(s.FUNC).alias(c.FUNC),
        pl.col(s.WAIT_NS).alias(c.WAIT_NS),
        pl.col(s.MSG).alias(c.MSG),
        pl.col(s.COUNT).alias(c.COUNT),
        pl.col(s.INTERNAL).fill_null(False).alias(c.INTERNAL),
        pl.col(s.STACK).alias(c.STACK),
        pl.col(_LINE_NO),  # for the duplicate check of ``_finish``, which drops it
    )


def _empty(*, line_no: bool = False) -> pl.DataFrame:
    extra = {_LINE_NO: pl.Int64} if line_no else {}
    return pl.DataFrame(schema={**EVENT_SCHEMA, **extra})


def _finish(
    frames: list[pl.LazyFrame], stats: LoadStats, low_memory_sort_rows: int
) -> pl.DataFrame:
    """Qualify units with their pid when there are several processes; sort by (pid, seq);
    drop repeated events (``_drop_duplicates``).

    Empties ``frames``, so that the raw rows can be freed column by column while sorting.
    """
    parts = [f.collect() for f in frames]
    frames.clear()
    heights = [p.height for p in parts]
    df = pl.concat(parts, how="vertical", rechunk=False)
    del parts
    several = df[c.PID].n_unique() > 1
    if several:
        prefix = pl.col(c.PID).cast(pl.String) + pl.lit("/")
        names_unit = pl.col(c.OP).is_in(list(s.UNIT_OPS)) | (
            (pl.col(c.OP) == s.Op.WAIT) & pl.col(c.KIND).is_in([s.Kind.THREAD, s.Kind.TASK])
        )
        df = df.with_columns(
            (prefix + pl.col(c.UNIT)).alias(c.UNIT),
            pl.when(names_unit & pl.col(c.OBJ).is_not_null())
            .then(prefix + pl.col(c.OBJ))
            .otherwise(pl.col(c.OBJ))
            .alias(c.OBJ),
        )
    # Sorted once, eagerly (the streaming engine's sort is several times slower), as
    # every analysis relies on per-process sequence order. One process: a single
    # integer key sorts fastest.
    keys = [c.PID, c.SEQ] if several else [c.SEQ]
    # Sorted keys with the rows' places: repeated (pid, seq) pairs are neighbours there
    # (one cheap pass to find them; the rare trace that has them takes the slow way).
    order = df.select(pl.arg_sort_by(keys)).to_series()
    sorted_keys = df.select(pl.col(c.PID, c.SEQ).gather(order))
    repeated = sorted_keys.select(
        ((pl.col(c.PID).diff() == 0) & (pl.col(c.SEQ).diff() == 0)).any()
    ).item()
    if repeated:
        df = _drop_duplicates(df, heights, stats)
        order = df.select(pl.arg_sort_by(keys)).to_series()
    df = df.drop(_LINE_NO)
    if df.height <= low_memory_sort_rows:
        return df.select(pl.all().gather(order))
    # Big traces: gathering one column at a time and dropping it from the unsorted
    # frame keeps the peak near one copy of the events, not two (about 2x slower).
    # Each column is made one chunk before its gather: a gather across the hundreds of
    # chunks the careful path leaves is about three times slower (at 10M events, most
    # of the load's time), and one column's extra copy is small next to the frame.
    columns: dict[str, pl.Series] = {}
    for name in list(df.columns):
        column = df.get_column(name)
        df = df.drop(name)
        columns[name] = column.rechunk().gather(order)
        del column
    return pl.DataFrame(columns)


def _drop_duplicates(df: pl.DataFrame, heights: list[int], stats: LoadStats) -> pl.DataFrame:
    """``df`` without the later copies of events repeated with the same ``pid`` and ``seq``.

    A copy identical to the first event with its ``pid`` and ``seq`` (in file order:
    the same trace given twice, or a file that repeats itself) is dropped and counted in
    ``stats``; a different event with the same pair is an error.

    Args:
        df: The concatenated files' events, in file order, with ``_LINE_NO``.
        heights: The number of rows of each file, in order (``stats.files``).

    Raises:
        TraceError: Two different events share a ``pid`` and ``seq``; the message names
            the later one's file and line, and the earlier one's.
    """
    row, first = "__row", "__first"
    content = list(EVENT_SCHEMA)
    indexed = df.with_row_index(row)
    firsts = (
        indexed.group_by(c.PID, c.SEQ)
        .agg(pl.col(row).min().alias(first), pl.len().alias("__n"))
        .filter(pl.col("__n") > 1)  # the repeated pairs only
        .drop("__n")
        .join(indexed.select(pl.all().name.suffix("_1")), left_on=first, right_on=row + "_1")
    )
    later = indexed.join(firsts, on=[c.PID, c.SEQ]).filter(pl.col(row) != pl.col(first))
    same = pl.all_horizontal(
        pl.col(k).eq_missing(pl.col(k + "_1")) for k in content if k not in (c.PID, c.SEQ)
    )
    later = later.with_columns(same.alias("__same"))
    bounds = list(itertools.accumulate(heights))

    def where(r: int, line: int) -> str:
        return f"{stats.files[bisect.bisect_right(bounds, r)]}:{line}"

    clash = later.filter(~pl.col("__same")).sort(row).head(1)
    if clash.height:
        r, line, r0, line0, pid, seq = clash.select(
            row, _LINE_NO, first, _LINE_NO + "_1", c.PID, c.SEQ
        ).row(0)
        raise TraceError(
            f"{where(r, line)}: pid {pid} seq {seq} already used by a different event at"
            f" {where(r0, line0)} (sequence numbers are unique within a process)"
        )
    dropped = later[row]
    stats.duplicates += dropped.len()
    stats.duplicate_files += len({bisect.bisect_right(bounds, r) for r in dropped.to_list()})
    return indexed.join(later.select(row), on=row, how="anti", maintain_order="left").drop(row)
