"""The ``walk_path`` fixture: a test module run on the compiled walk and on the Python one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tracelens.analyze.hb import clocks

#: The compiled walk as it was loaded (``None``: not built, or forced off for this run).
BUILT = clocks.compiled


@pytest.fixture(scope="module", params=["c", "python"])
def walk_path(request: pytest.FixtureRequest) -> Iterator[str]:
    """Switch ``vector_clocks`` to one walk for the tests of a module (module-scoped, so
    that Hypothesis tests may use it)."""
    if request.param == "c" and BUILT is None:
        pytest.skip("the compiled walk is not built (or TRACELENS_PURE_PYTHON is set)")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(clocks, "compiled", BUILT if request.param == "c" else None)
        yield request.param
