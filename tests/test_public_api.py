"""The public surface is a contract: these names exist and nothing private leaks out."""

from __future__ import annotations

import structlog

import tracelens
import tracelens.processors
from tracelens.testing import read_events


def test_all_names_are_exported_and_sorted():
    """Everything in __all__ is importable, and __all__ is sorted."""
    assert sorted(tracelens.__all__) == tracelens.__all__
    for name in tracelens.__all__:
        assert hasattr(tracelens, name)


def test_the_contract_names_are_public():
    """The names other programs rely on are part of the recorder API."""
    assert {"configure", "shutdown", "watch", "read", "write", "atomic", "processors"} <= set(
        tracelens.__all__
    )


def test_structlog_recipe_puts_events_in_the_applications_file(tmp_path):
    """The docs/api.md recipe: events go through the app's own chain into its file."""
    out = tmp_path / "app.jsonl"
    with out.open("a") as f:
        structlog.configure(
            processors=[
                structlog.processors.add_log_level,
                tracelens.processors.add_trace_context,
                structlog.processors.JSONRenderer(),
            ],
            logger_factory=structlog.WriteLoggerFactory(f),
        )
        try:
            tracelens.configure(None, emit="structlog")
            structlog.get_logger().info("hello")
            tracelens.watch({}, "d")["x"] = 1
            tracelens.shutdown()
        finally:
            structlog.reset_defaults()

    events = read_events(out)
    assert [e["event"] for e in events] == ["meta", "write", "write"]
    assert len(out.read_text().splitlines()) == 4  # and the application's own line


def test_recorder_names_load_on_first_use_only():
    """The analyzer imports tracelens.schema without loading the recorder (structlog)."""
    import subprocess
    import sys

    code = (
        "import sys, tracelens, tracelens.analyze\n"
        "before = 'structlog' in sys.modules\n"
        "tracelens.configure\n"
        "print(before, 'structlog' in sys.modules, sorted(tracelens.__all__) == sorted(\n"
        "    n for n in dir(tracelens) if n in tracelens.__all__))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    assert out.stdout.split() == ["False", "True", "True"]


def test_an_unknown_name_is_an_attribute_error():
    """Getting a name tracelens does not have raises AttributeError naming it."""
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        tracelens.nope  # noqa: B018
