"""Comments and docstrings cite what a reader can open and state present facts, not the code's history."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SOURCES = sorted([*(ROOT / "deepanon").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py")])
# phrases that tell how the code or its numbers changed over time
HISTORY = re.compile(
    r"\bonce (shrank|left|put|got|was|were|had|made|lost)\b|\bused to\b|\bpreviously\b|\bno longer\b|\bnow\b"
    r"|\bwas \d|\bwere \d|\bformerly\b",
    re.IGNORECASE,
)


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


@pytest.mark.parametrize("path", SOURCES, ids=relative)
def test_every_cited_markdown_file_is_in_the_repository(path):
    cited = set(re.findall(r"[\w./-]*\w\.md\b", path.read_text()))
    missing = [name for name in cited if not (ROOT / name).is_file() and not (path.parent / name).is_file()]
    assert not missing, f"{relative(path)} cites files outside the repository: {missing}"


@pytest.mark.parametrize("path", SOURCES, ids=relative)
def test_comments_state_no_history(path):
    found = [f"{relative(path)}:{n}: {line.strip()}" for n, line in enumerate(path.read_text().splitlines(), 1)
             if HISTORY.search(line)]
    assert not found, "\n".join(found)
