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
from tracelens.record import _core
from tracelens.reproduce import importable_call
from tracelens.testing import Call, Hold, Plan, Point, assert_not_reproduced, run_in_process

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
    with pytest.raises(AssertionError, match=r"lost update|output changed"):
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


def test_in_this_process_the_forced_function_loses_updates_and_its_serial_run_none(
    tmp_path: Path,
) -> None:
    """run_in_process forces the hold on the imported main(): the weight comes out wrong;
    a serial run of it gives 1001.0."""
    app = _import(tmp_path, ARTICLE_RACY, "inproc_racy")
    call = Call.of(app.main, str(tmp_path / "unused.jsonl"))
    forced = run_in_process(call, _plan(tmp_path, "inproc_racy"))
    assert forced.forced and forced.status == 0
    assert "weight = 1001.0 (expected" not in forced.stdout
    serial = run_in_process(call, Plan(serial=True))
    assert serial.stdout.startswith("weight = 1001.0 (expected 1001.0)")


def test_in_this_process_a_hand_written_test_fails_on_the_race_and_passes_on_the_fix(
    tmp_path: Path,
) -> None:
    """assert_not_reproduced(in_process=True) raises on the racy main() and not on the
    Lock fix's, under the same plan."""
    racy = _import(tmp_path, ARTICLE_RACY, "hand_ip_racy")
    with pytest.raises(AssertionError, match=r"lost update|output changed"):
        assert_not_reproduced(
            Call.of(racy.main, "t.jsonl"),
            _plan(tmp_path, "hand_ip_racy"),
            var=VAR,
            in_process=True,
        )
    fixed = _import(tmp_path, ARTICLE_LOCKED, "hand_ip_locked")
    assert_not_reproduced(
        Call.of(fixed.main, "t.jsonl"), _plan(tmp_path, "hand_ip_locked"), var=VAR, in_process=True
    )


def test_a_run_in_this_process_gives_the_c_recorder_back(tmp_path: Path) -> None:
    """After run_in_process the recorder modules record with what they had before."""
    before = _core.record
    app = _import(tmp_path, ARTICLE_LOCKED, "restore_locked")
    run_in_process(Call.of(app.main, "t.jsonl"), Plan(serial=True))
    assert _core.record is before
    from tracelens.record import locks

    assert locks.record is before


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
