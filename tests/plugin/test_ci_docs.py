"""The commands of the GitHub Actions workflow in docs/ci.md run as written."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import jsonschema
import yaml
from markdown_it import MarkdownIt

from tests.plugin.test_pytest_plugin import APP, TESTS

DOCS = Path(__file__).parents[2] / "docs" / "ci.md"
SARIF_SCHEMA = Path(__file__).parents[1] / "data" / "sarif-schema-2.1.0.json"


def _workflow() -> dict:
    block = re.search(r"```yaml\n(.*?)```", DOCS.read_text(), re.S)
    assert block is not None
    return yaml.safe_load(block.group(1))


def _our_steps() -> list[str]:
    """The run: steps that call pytest or tracelens (not installing, not gh)."""
    steps = _workflow()["jobs"]["tracelens"]["steps"]
    runs = [s["run"] for s in steps if "run" in s]
    return [r for r in runs if shlex.split(r)[0] in ("pytest", "tracelens")]


def test_the_documented_workflow_runs_as_written(tmp_path: Path) -> None:
    """pytest fails on the racy test; the SARIF validates; the summary is Markdown that renders."""
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "0"\n')
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "test_app.py").write_text(TESTS)
    summary = tmp_path / "summary.md"
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_STEP_SUMMARY": str(summary),
    }
    codes = []
    for command in _our_steps():
        done = subprocess.run(
            ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, timeout=300
        )
        codes.append(done.returncode)
    assert codes == [1, 0, 0]  # the tests fail on the race; the reports never fail
    sarif = json.loads((tmp_path / "tracelens.sarif").read_text())
    schema = json.loads(SARIF_SCHEMA.read_text())
    jsonschema.validators.validator_for(schema)(schema).validate(sarif)
    assert any(r["ruleId"] == "data_race" for r in sarif["runs"][0]["results"])
    text = summary.read_text()
    assert len(text) <= 65_536 and "<table>" in MarkdownIt("gfm-like").render(text)
