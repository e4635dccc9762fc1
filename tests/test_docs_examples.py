"""The code in the docs runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), flags=re.S)


@pytest.mark.parametrize("page, expected", [("docs/custom_models.md", "accuracy"), ("README.md", "SNN / ANN")])
def test_doc_example_runs(page, expected, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    blocks = _python_blocks(ROOT / page)
    assert blocks, f"{page} has no python example"
    for code in blocks:
        exec(compile(code, f"{page}", "exec"), {"__name__": "__doc_example__"})
    out = capsys.readouterr().out
    assert expected in out
