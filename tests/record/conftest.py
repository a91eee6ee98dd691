"""Every recorder test runs twice: on the C accelerator and on the pure-Python path."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tracelens.record import _core

#: The accelerator as it was loaded (``None``: not built, or forced off for this run).
BUILT = _core.speedups


@pytest.fixture(autouse=True, params=["c", "python"])
def recorder_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Switch the recorder (this process, and children through the environment) to one path."""
    if request.param == "c":
        if BUILT is None:
            pytest.skip("the C accelerator is not built (or TRACELENS_PURE_PYTHON is set)")
        monkeypatch.delenv("TRACELENS_PURE_PYTHON", raising=False)
        impl = BUILT.record
    else:
        monkeypatch.setenv("TRACELENS_PURE_PYTHON", "1")
        monkeypatch.setattr(_core, "speedups", None)
        impl = _core.py_record
    both = {_core.py_record} if BUILT is None else {_core.py_record, BUILT.record}
    for name, mod in list(sys.modules.items()):
        if name.startswith("tracelens.") and getattr(mod, "record", None) in both:
            monkeypatch.setattr(mod, "record", impl)
    monkeypatch.setattr(_core, "_said", set())  # each run is told its warnings afresh
    yield request.param
