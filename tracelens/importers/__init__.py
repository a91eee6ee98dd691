"""Importers: traces from other tools, converted into tracelens traces."""

from __future__ import annotations

from tracelens.importers.std import StdError, StdStats, convert_std

__all__ = ["StdError", "StdStats", "convert_std"]
