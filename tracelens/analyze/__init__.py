"""The analyzer: load traces into polars, run analyses, build reports."""

from __future__ import annotations

from tracelens.analyze.load import LoadStats, Trace, TraceError, load

__all__ = ["LoadStats", "Trace", "TraceError", "load"]
