"""The public surface is a contract: these names exist and nothing private leaks out."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import structlog

import tracelens
import tracelens.processors
import tracelens.record.processors
from tracelens.testing import read_events

#: The public names of ``tracelens.processors`` (docs/api.md).
PROCESSORS = [
    "TraceLogger",
    "TraceLoggerFactory",
    "add_trace_context",
    "drop_trace_events",
    "keep_only_trace_events",
]


def _python(code: str) -> str:
    """Run ``code`` in a fresh interpreter that imports this tree's tracelens; its stdout."""
    root = str(Path(tracelens.__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return out.stdout


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
        watch = tracelens.watch  # imported now: a first import under recording records
        try:  # the import system's module locks
            tracelens.configure(None, emit="structlog")
            structlog.get_logger().info("hello")
            watch({}, "d")["x"] = 1
            tracelens.shutdown()
        finally:
            structlog.reset_defaults()

    events = read_events(out)
    assert [e["event"] for e in events] == ["meta", "write", "write"]
    lines = [orjson.loads(x) for x in out.read_text().splitlines()]
    others = [d for d in lines if d["event"] != "stack"]  # the stack definitions went too
    assert len(others) == 4  # and the application's own line
    assert {d["id"] for d in lines if d["event"] == "stack"} >= {e["stack"] for e in events[1:]}


def test_recorder_names_load_on_first_use_only():
    """The analyzer imports tracelens.schema without loading the recorder."""
    code = (
        "import sys, tracelens, tracelens.analyze\n"
        "rec = 'tracelens.record._config'\n"
        "before = rec in sys.modules\n"
        "tracelens.configure\n"
        "print(before, rec in sys.modules, sorted(tracelens.__all__) == sorted(\n"
        "    n for n in dir(tracelens) if n in tracelens.__all__))"
    )
    assert _python(code).split() == ["False", "True", "True"]


def test_an_unknown_name_is_an_attribute_error():
    """A name the package does not have raises AttributeError, naming it."""
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        tracelens.nope  # noqa: B018


@pytest.mark.parametrize(
    "first",
    [
        "import tracelens\nm = tracelens.processors",
        "import tracelens.processors\nm = tracelens.processors",
        "from tracelens import processors as m",
    ],
    ids=["attribute-first", "submodule-first", "from-import"],
)
def test_processors_is_one_module_whichever_import_comes_first(first):
    """``tracelens.processors`` is the module ``tracelens.processors``, with the same names."""
    code = (
        "import json, sys\n"
        f"{first}\n"
        "import tracelens, tracelens.processors, tracelens.record.processors as impl\n"
        "print(json.dumps({\n"
        "    'module': m is sys.modules['tracelens.processors'],\n"
        "    'attribute': tracelens.processors is sys.modules['tracelens.processors'],\n"
        "    'name': m.__name__,\n"
        "    'all': sorted(m.__all__),\n"
        "    'same': [n for n in m.__all__ if getattr(m, n) is getattr(impl, n)],\n"
        "}))"
    )
    got = json.loads(_python(code))

    assert got == {
        "module": True,
        "attribute": True,
        "name": "tracelens.processors",
        "all": PROCESSORS,
        "same": PROCESSORS,
    }


def test_processors_re_exports_every_public_processor():
    """Every public function and class of the implementation is in ``tracelens.processors``."""
    impl = tracelens.record.processors
    defined = sorted(
        name
        for name, obj in vars(impl).items()
        if not name.startswith("_")
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and obj.__module__ == impl.__name__
    )

    assert defined == PROCESSORS
    assert sorted(tracelens.processors.__all__) == PROCESSORS
    assert all(getattr(tracelens.processors, n) is getattr(impl, n) for n in PROCESSORS)
