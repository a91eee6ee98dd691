"""Exporters: a loaded trace and its findings in other tools' formats.

``perfetto``: Chrome trace-event JSON for ui.perfetto.dev.
"""

from __future__ import annotations
