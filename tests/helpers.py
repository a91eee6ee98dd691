"""Helpers for tests that read trace files back."""

from __future__ import annotations

from tracelens.testing import read_events as read_trace

__all__ = ["read_trace"]
