"""The renderers' modules are imported when their format is used, not with the package."""

from __future__ import annotations

import subprocess
import sys

from tracelens import report
from tracelens.report import html, json_, markdown, sarif, text


def test_every_format_maps_to_its_modules_render() -> None:
    """``RENDERERS[fmt]`` is the render function of that format's module, in FORMATS order."""
    modules = {"text": text, "json": json_, "markdown": markdown, "html": html, "sarif": sarif}
    assert report.FORMATS == ("text", "json", "markdown", "html", "sarif")
    assert list(report.RENDERERS) == list(report.FORMATS)
    assert {f: report.RENDERERS[f] for f in report.FORMATS} == {
        f: m.render for f, m in modules.items()
    }


def test_importing_the_package_leaves_the_renderers_unloaded() -> None:
    """``import tracelens.report`` imports no renderer (nor rich) until one is asked for."""
    code = (
        "import sys, tracelens.report as r\n"
        "before = {m for m in sys.modules if m.startswith(('rich', 'tracelens.report.'))}\n"
        "r.RENDERERS['json']\n"
        "after = {m for m in sys.modules if m.startswith(('rich', 'tracelens.report.'))}\n"
        "print(sorted(before), 'tracelens.report.json_' in after, 'rich' in after)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["['tracelens.report._common']", "True", "False"]
