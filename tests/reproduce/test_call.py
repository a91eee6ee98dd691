"""The program's own function under a plan (``tracelens.testing.Call``), and when
``--emit-test`` can import it or keeps the command form."""

from __future__ import annotations

import importlib
import shutil
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.reproduce.programs import ARTICLE_LOCKED, ARTICLE_RACY, site
from tracelens.reproduce import importable_call
from tracelens.testing import Call, Hold, Plan, Point, assert_not_reproduced

VAR = "model['weight']"


def _import(tmp: Path, source: Path, name: str) -> ModuleType:
    shutil.copyfile(source, tmp / f"{name}.py")
    sys.path.insert(0, str(tmp))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(tmp))


def _plan(tmp: Path, name: str) -> Plan:
    at = site(tmp / f"{name}.py", 'model["weight"] +=')
    return Plan(holds=(Hold(Point("read", VAR, at), Point("write", VAR)),), timeout=20.0)


def test_a_hand_written_plan_on_an_imported_function_fails_on_the_lost_update(
    tmp_path: Path,
) -> None:
    """Holding a worker after its read of the weight until another writes it, on the
    article's main() imported: the forced run loses updates, the assertion fires."""
    app = _import(tmp_path, ARTICLE_RACY, "hand_racy")
    with pytest.raises(AssertionError, match="lost update|output changed"):
        assert_not_reproduced(
            Call.of(app.main, str(tmp_path / "t.jsonl")),
            _plan(tmp_path, "hand_racy"),
            var=VAR,
            cwd=tmp_path,
        )


def test_the_same_plan_on_the_locked_function_passes(tmp_path: Path) -> None:
    """The twin: the Lock fix's main() under the same plan keeps the serial result."""
    app = _import(tmp_path, ARTICLE_LOCKED, "hand_locked")
    assert_not_reproduced(
        Call.of(app.main, str(tmp_path / "t.jsonl")),
        _plan(tmp_path, "hand_locked"),
        var=VAR,
        cwd=tmp_path,
    )


def test_call_of_a_nested_function_is_refused() -> None:
    """A function not importable by name (a closure) cannot be a Call."""

    def inner() -> None:
        pass

    with pytest.raises(ValueError, match="cannot be imported by name"):
        Call.of(inner)


def test_a_script_whose_main_block_calls_its_function_is_importable(tmp_path: Path) -> None:
    """The article's `main(sys.argv[1] if ... else default)` becomes Call(app, main, args)
    with the argument computed from the command."""
    shutil.copyfile(ARTICLE_RACY, tmp_path / "app.py")
    call, why = importable_call(["app.py", "x.jsonl"], tmp_path)
    assert call == Call("app", "main", ("x.jsonl",), str(tmp_path)), why


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("import threading\nprint(1)\n", "no `if __name__"),
        ("def main(n):\n    pass\nif __name__ == '__main__':\n    main(n=1)\n", "not one call"),
        ("def main(n):\n    pass\nif __name__ == '__main__':\n    main(open('f'))\n", "uses open"),
    ],
)
def test_a_script_that_cannot_be_imported_keeps_the_command_form(
    tmp_path: Path, source: str, reason: str
) -> None:
    """No __main__ block, a keyword call, an argument computed from anything but sys.argv:
    no Call, and the reason says why."""
    (tmp_path / "app.py").write_text(source, encoding="utf-8")
    call, why = importable_call(["app.py"], tmp_path)
    assert call is None and reason in why
