"""The vectorised STD converter: ``std_events``'s mapping in polars expressions.

Same output bytes as the per-line reference (``tracelens.importers.std.std_events`` +
orjson), which stays the definition: traces with anything unusual (bad lines, non-ASCII
or characters JSON must escape) are handed to the reference, which also names the first
offending line.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO, Final

import orjson
import polars as pl

from tracelens import schema as s
from tracelens.importers.std_ops import EVENT_PATTERN, NUMBER_PATTERN, SIMPLE_OPS, SKIPPED_OPS

#: Only printable ASCII without quote or backslash goes the fast way (no JSON escapes).
_UNUSUAL: Final = r'[^\x20-\x7e]|["\\]'
_EVENT: Final = EVENT_PATTERN
_NUMBER: Final = f"^{NUMBER_PATTERN}$"
_OPS: Final = SIMPLE_OPS
_SKIPPED: Final = SKIPPED_OPS


def fast_convert(text: str, file: str, skipped: dict[str, int]) -> pl.Series | None:
    """The JSON lines of ``text`` (one per event), or ``None`` to use the reference.

    ``skipped`` is filled with the counts of skipped operations on success.
    """
    lines = pl.Series("l", [text]).str.split("\n").explode()
    df = pl.DataFrame({"l": lines}).with_columns(
        pl.col("l").str.strip_chars(" "), n=pl.int_range(pl.len())
    )
    if df.select(pl.col("l").str.contains(_UNUSUAL).any()).item():
        return None
    df = df.filter((pl.col("l") != "") & ~pl.col("l").str.starts_with("#"))
    parts = pl.col("l").str.split("|")
    df = df.select(
        "n",
        npart=parts.list.len(),
        thread=parts.list.get(0, null_on_oob=True).str.strip_chars(" "),
        ev=parts.list.get(1, null_on_oob=True).str.strip_chars(" "),
        loc=parts.list.get(2, null_on_oob=True).str.strip_chars(" ").fill_null(""),
    ).with_columns(
        name=pl.col("ev").str.extract(_EVENT, 1),
        arg=pl.col("ev").str.extract(_EVENT, 2),
    )
    df = df.with_columns(key=pl.col("name").str.to_lowercase())
    known = [*_OPS, "begin", "end", *_SKIPPED]
    bad = (
        ~pl.col("npart").is_in([2, 3])
        | (pl.col("thread") == "")
        | pl.col("name").is_null()
        | ~pl.col("key").is_in(known)
        | (pl.col("key").is_in(list(_OPS)) & (pl.col("arg").fill_null("") == ""))
    )
    if df.select(bad.any()).item():
        return None
    skip = df.filter(pl.col("key").is_in(_SKIPPED))
    counts = skip.group_by("key").len()
    df = df.filter(~pl.col("key").is_in(_SKIPPED))
    if df.select(pl.col("key").is_in(["begin", "end"]).any()).item():
        regions = _nest(df.filter(pl.col("key").is_in(["begin", "end"])))
        if regions is None:
            return None
        df = df.join(regions, on="n", how="left").with_columns(arg=pl.coalesce("region", "arg"))
    for k, v in zip(counts["key"].to_list(), counts["len"].to_list(), strict=True):
        skipped[k] = skipped.get(k, 0) + v
    op_of = {k: str(v[0]) for k, v in _OPS.items()} | {
        "begin": str(s.Op.ATOMIC_BEGIN),
        "end": str(s.Op.ATOMIC_END),
    }
    kind_of = {k: str(v[1]) for k, v in _OPS.items() if v[1] is not None} | {
        "begin": str(s.Kind.ATOMIC),
        "end": str(s.Kind.ATOMIC),
    }
    first = pl.col("n").min().over("thread")
    seq = pl.int_range(pl.len()).cast(pl.String)
    memory = pl.col("key").is_in(["r", "w"])
    numeric = pl.col("loc").str.contains(_NUMBER)
    middle = (
        pl.when(memory)
        .then(pl.concat_str(pl.lit(f',"{s.VAR}":"'), "arg", pl.lit('"')))
        .otherwise(
            pl.concat_str(
                pl.lit(f',"{s.OBJ}":"'),
                "arg",
                pl.lit(f'","{s.KIND}":"'),
                pl.col("key").replace_strict(kind_of, default=""),
                pl.lit('"'),
                pl.when(pl.col("key") == "acq")
                .then(pl.lit(f',"{s.WAIT_NS}":0'))
                .otherwise(pl.lit("")),
            )
        )
    )
    out = df.select(
        pl.concat_str(
            pl.lit(f'{{"{s.TL}":{orjson.dumps(s.FORMAT_VERSION).decode()},"{s.SEQ}":'),
            seq,
            pl.lit(f',"{s.TS}":'),
            seq,
            pl.lit(f',"{s.PID}":1,"{s.UNIT}":"'),
            "thread",
            pl.lit(f'","{s.TID}":'),
            (first.rank("dense") - 1).cast(pl.String),
            pl.lit(f',"{s.THREAD}":"'),
            "thread",
            pl.lit(f'","{s.OP}":"'),
            pl.col("key").replace_strict(op_of, default=""),
            pl.lit('"'),
            middle,
            pl.lit(f',"{s.FILE}":{orjson.dumps(file).decode()},"{s.LINE}":'),
            pl.when(numeric)
            .then(pl.col("loc").cast(pl.Int64).cast(pl.String))
            .otherwise(pl.lit("0")),
            pl.lit(f',"{s.FUNC}":"'),
            pl.when(numeric | (pl.col("loc") == "")).then(pl.lit("<std>")).otherwise(pl.col("loc")),
            pl.lit('"}'),
        ).alias("json")
    )
    return out["json"]


def _nest(tx: pl.DataFrame) -> pl.DataFrame | None:
    """The region of each ``begin``/``end`` row (a per-thread stack), ``None`` on a bad end."""
    stacks: dict[str, list[str]] = {}
    ns: list[int] = []
    regions: list[str] = []
    for n, thread, key, arg in tx.select("n", "thread", "key", "arg").iter_rows():
        stack = stacks.setdefault(thread, [])
        if key == "begin":
            region = arg or f"{thread}.tx"
            stack.append(region)
        elif stack:
            region = stack.pop()
        else:
            return None
        ns.append(n)
        regions.append(region)
    return pl.DataFrame({"n": ns, "region": regions}, schema={"n": pl.Int64, "region": pl.String})


def write_lines(col: pl.Series, out: Path | BinaryIO) -> None:
    """Write one JSON document per line, as they are (to a path, or an open file)."""
    if col.len() == 0:
        if isinstance(out, Path):
            out.write_bytes(b"")
        return
    col.to_frame().write_csv(out, include_header=False, quote_style="never")
