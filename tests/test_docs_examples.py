"""The code in the docs runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("page", ["custom_models.md"])
def test_doc_example_runs(page, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = _python_blocks(DOCS / page)
    assert blocks, f"{page} has no python example"
    for code in blocks:
        exec(compile(code, f"{page}", "exec"), {"__name__": "__doc_example__"})
    out = capsys.readouterr().out
    assert "accuracy" in out
