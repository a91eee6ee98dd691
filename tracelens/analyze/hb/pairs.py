"""Pairs of racing accesses into finding rows: the builder ``data_race`` and
``inconsistent_locking`` share.

An instance is a pair of accesses to one variable (``e_g``, the later access's ``G``;
``p_g``, the earlier one's). Instances are grouped into one finding per variable and
pair of code sites; only the first and the widest instance of each group get their
full event details.
"""

from __future__ import annotations

import polars as pl

from tracelens.analyze import columns as c
from tracelens.analyze.columns import G, global_order, unit_word_expr
from tracelens.analyze.findings import (
    FINDING_SCHEMA,
    SITE_DTYPE,
    detail_columns,
    empty_findings,
    event_struct,
    site_struct,
    with_lists,
)
from tracelens.analyze.hb.shared import Tables

__all__ = ["race_findings", "race_sites"]


def _where(prefix: str) -> pl.Expr:
    """``file:line`` of the event with the given column prefix."""
    return pl.format("{}:{}", pl.col(prefix + "file"), pl.col(prefix + "line"))


def _who(prefix: str) -> pl.Expr:
    """``thread NAME`` or ``task NAME`` for the event with the given column prefix."""
    return pl.format("{} {}", unit_word_expr(pl.col(prefix + "unit")), pl.col(prefix + "unit_name"))


def race_findings(
    pairs: pl.LazyFrame,
    events: pl.LazyFrame,
    t: Tables,
    *,
    kind: str,
    severity: str,
    tail: str,
) -> pl.DataFrame:
    """Group instances (earlier access ``p_g``, later access ``e_g``) into findings.

    One finding per variable and pair of code sites (the earlier access's site
    first). Per group, the first instance (smallest ``e_g``, then latest ``p_g``)
    becomes ``events`` and the widest one in time (then the first) ``worst``; only
    those get their full event details, from ``events``.

    Args:
        pairs: Rows ``e_g``, ``p_g`` (unique pairs).
        events: The loaded trace.
        t: The tables (``acc`` for variables, sites and lock sets).
        kind: The finding kind.
        severity: Its severity.
        tail: End of the explanation sentence.

    Returns:
        ``FINDING_SCHEMA`` rows, sorted by variable and first occurrence.
    """
    info = t.acc.lazy().select(G, c.VAR, c.TS, c.FILE, c.LINE, c.FUNC)
    site = [c.FILE, c.LINE, c.FUNC]
    rows = (
        pairs.join(info.select(pl.all().name.prefix("e_")), left_on="e_g", right_on="e_" + G)
        .join(
            info.select(G, *site, c.TS).select(pl.all().name.prefix("p_")),
            left_on="p_g",
            right_on="p_" + G,
        )
        .with_columns((pl.col("e_ts") - pl.col("p_ts")).abs().alias("_gap"))
    )
    keys = ["e_" + c.VAR, *[f"p_{c}" for c in site], *[f"e_{c}" for c in site]]
    inst = pl.struct("e_g", "p_g")
    grouped = (
        rows.group_by(keys)
        .agg(
            pl.len().cast(pl.Int64).alias("count"),
            inst.sort_by(["e_g", "p_g"], descending=[False, True]).first().alias("_first"),
            inst.sort_by(["_gap", "e_g", "p_g"], descending=[True, False, True])
            .first()
            .alias("_worst"),
        )
        .collect()
    )
    if grouped.height == 0:
        return empty_findings()
    grouped = grouped.with_columns(
        pl.col("_first").struct.field("e_g").alias("fe"),
        pl.col("_first").struct.field("p_g").alias("fp"),
        pl.col("_worst").struct.field("e_g").alias("we"),
        pl.col("_worst").struct.field("p_g").alias("wp"),
    ).drop("_first", "_worst")
    gs = pl.concat([grouped[c] for c in ("fe", "fp", "we", "wp")]).unique()
    details = (
        events.filter(global_order().is_in(gs.implode()))
        .select(detail_columns())
        .join(t.acc.lazy().select(G, "ls"), on=G, how="left")
        .join(t.locksets.lazy(), on="ls", how="left")
        .with_columns(pl.col("locks").fill_null(pl.lit([], dtype=pl.List(pl.String))))
        .drop("ls")
        .collect()
        .lazy()
    )
    out = grouped.lazy()
    for col, prefix in (("fe", "e_"), ("fp", "p_"), ("we", "we_"), ("wp", "wp_")):
        d = details.select(pl.all().name.prefix(prefix))
        if prefix == "e_":  # the grouping keys already hold e_var, sites
            d = d.drop("e_file", "e_line", "e_func")
        elif prefix == "p_":
            d = d.drop("p_file", "p_line", "p_func")
        out = out.join(d, left_on=col, right_on=prefix + G, how="left")
    out = out.with_columns(pl.col("e_" + c.VAR).alias("e_target"))
    role = pl.format("previous {}", pl.col("p_op"))
    wrole = pl.format("previous {}", pl.col("wp_op"))
    expl = pl.format(
        "{} at {} by {}{}, previous {} at {} by {}{}, " + tail,
        pl.col("e_op"),
        _where("e_"),
        _who("e_"),
        _locks_note("e_locks"),
        pl.col("p_op"),
        _where("p_"),
        _who("p_"),
        _locks_note("p_locks"),
    )
    shown = with_lists(
        out.sort(["e_target", "fe"]).collect(),
        {
            "sites": [site_struct("p_"), site_struct("e_")],
            "events": [event_struct("p_", role), event_struct("e_", pl.col("e_op"))],
            "worst": [event_struct("wp_", wrole), event_struct("we_", pl.col("we_op"))],
        },
    )
    return (
        shown.lazy()
        .select(
            pl.lit(kind).alias("kind"),
            pl.lit(severity).alias("severity"),
            pl.col("e_target").alias("var"),
            pl.concat_list(pl.col("p_unit_name"), pl.col("e_unit_name")).alias("units"),
            "sites",
            pl.col("count"),
            "events",
            "worst",
            expl.alias("explanation"),
        )
        .cast(dict(FINDING_SCHEMA))  # type: ignore[arg-type]
        .collect()
    )


def _locks_note(col: str) -> pl.Expr:
    locks = pl.col(col)
    return (
        pl.when(locks.list.len() > 0)
        .then(pl.format(" holding {}", locks.list.join(", ")))
        .otherwise(pl.lit(" holding no lock"))
    )


def race_sites(pairs: pl.DataFrame, t: Tables) -> pl.DataFrame:
    """``var`` and ``sites`` (earlier access's site, later access's) of pairs of accesses.

    What ``inconsistent_locking(reported=...)`` reads of finding rows, for the pairs
    ``data_race`` hands to ``on_pairs``: one row per variable and pair of sites.
    """
    site = pl.struct(pl.col(c.FILE), pl.col(c.LINE), pl.col(c.FUNC)).cast(SITE_DTYPE)
    info = t.acc.lazy().select(G, c.VAR, site.alias("_site"))
    return (
        pairs.lazy()
        .join(info.select(pl.col(G).alias("e_g"), c.VAR, pl.col("_site").alias("_e")), on="e_g")
        .join(info.select(pl.col(G).alias("p_g"), pl.col("_site").alias("_p")), on="p_g")
        .select(c.VAR, "_p", "_e")
        .unique()
        .select(pl.col(c.VAR).alias("var"), pl.concat_list("_p", "_e").alias("sites"))
        .collect()
    )
