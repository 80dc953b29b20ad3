"""README.md's examples run as written.

Every ```python block runs, in a fresh namespace and an empty working folder, unless the line before
its fence is a marker comment:

- ``<!-- readme-test: offline-error "TEXT" -->``: the block needs a download; with the network cut
  (a proxy on a closed local port, an empty torch.hub cache) it must stop with a one-line error that
  contains TEXT, as the README documents;
- ``<!-- readme-test: skip (REASON) -->``: not run, for the reason given;
- ``<!-- readme-test: walkthrough -->``: part of the fine-tune walkthrough (its Python and shell
  blocks), run end to end by :func:`test_fine_tune_walkthrough`.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

README = Path(__file__).resolve().parents[1] / "README.md"
_MARKER = re.compile(r"^<!--\s*readme-test:\s*(?P<kind>[a-z-]+)\s*(?P<arg>.*?)\s*-->$")
_KINDS = ("offline-error", "skip", "walkthrough")


@dataclass
class Block:
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    kind: str | None
    arg: str

    @property
    def id(self) -> str:
        return f"README.md:{self.line}"


def _blocks() -> list[Block]:
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w+)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        start = i
        j = i + 1
        while j < len(lines) and lines[j].strip() != "```":
            j += 1
        previous = next(
            (lines[k].strip() for k in range(start - 1, -1, -1) if lines[k].strip()), ""
        )
        marker = _MARKER.match(previous)
        blocks.append(
            Block(
                line=start + 1,
                language=fence.group(1),
                code="\n".join(lines[start + 1 : j]) + "\n",
                kind=marker.group("kind") if marker else None,
                arg=marker.group("arg") if marker else "",
            )
        )
        i = j + 1
    return blocks


BLOCKS = _blocks()
PYTHON = [b for b in BLOCKS if b.language == "python" and b.kind != "walkthrough"]


def _run(block: Block) -> dict:
    namespace: dict = {"__name__": "__readme__"}
    exec(compile(block.code, block.id, "exec"), namespace)  # noqa: S102  (the README is ours)
    return namespace


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No network (every URL goes to a closed local port) and an empty torch.hub cache."""
    for name in (
        "http_proxy",
        "https_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("no_proxy", "NO_PROXY", "ANTIALIAS_WEIGHTS_MIRROR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_readme_has_examples_and_every_marker_is_known() -> None:
    assert len(PYTHON) >= 5
    for block in BLOCKS:
        assert block.kind in (None, *_KINDS), f"{block.id}: unknown marker {block.kind!r}"
        if block.kind == "offline-error":
            assert re.fullmatch(r'"[^"]+"', block.arg), f'{block.id}: offline-error needs "TEXT"'
        if block.kind == "skip":
            assert block.arg, f"{block.id}: a skip marker says why"
    assert not any("torchvision_resnet50" in b.code for b in BLOCKS)  # the old undefined name


@pytest.mark.parametrize("block", PYTHON, ids=[b.id for b in PYTHON])
def test_python_example(block: Block, offline: Path) -> None:
    if block.kind == "skip":
        pytest.skip(f"{block.id}: {block.arg}")
    torch.manual_seed(0)
    if block.kind == "offline-error":
        expected = block.arg.strip('"')
        with pytest.raises(Exception) as info:  # noqa: PT011  (the message is what is documented)
            _run(block)
        message = str(info.value).strip()
        assert expected in message, f"{block.id}: {message}"
        assert "\n" not in message and "Traceback" not in message, f"{block.id}: not one line"
        return
    _run(block)


def test_the_readme_claims_hold() -> None:
    text = README.read_text(encoding="utf-8")
    from antialias.models import list_models

    assert len(list_models()) == 23 and len(list_models("*resnet*")) == 7
    assert "# 7: resnet18 ... resnet152, wide_resnet50_2, wide_resnet101_2" in text
    # Time claims name the machine they were measured on.
    for claim in re.findall(r"[^.]*\b\d+(?:\.\d+)? (?:s|seconds|minutes?)\b[^.]*\.", text):
        if "benchmarks/run.py" in claim or "about 4 min" in claim:
            continue
        assert re.search(r"2-core|GPU|CPU|machine", claim), claim
    # The quick start installs the light extra; the tests use [dev], as .ci/run does.
    quick = text.split("## Quick start", 1)[1].split("## ", 1)[0]
    assert 'pip install -e ".[demo]"' in quick and "antialias demo" in quick
    assert 'pip install -e ".[dev]"' in quick and "python -m pytest -n auto -q" in quick
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert '-e ".[dev]"' in ci and "python -m pytest -n auto -q" in ci


def _commands(code: str) -> list[str]:
    """The shell commands of a block: comments dropped, backslash continuations joined."""
    commands, current = [], ""
    for raw in code.splitlines():
        line = raw.split(" #", 1)[0].rstrip() if not raw.lstrip().startswith("#") else ""
        if not line.strip():
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        commands.append((current + line).strip())
        current = ""
    return commands


@pytest.mark.slow
def test_fine_tune_walkthrough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    """README's "Train and fine-tune" walkthrough, end to end: its files, commands and table."""
    from antialias.cli import main

    steps = [b for b in BLOCKS if b.kind == "walkthrough"]
    assert [b.language for b in steps][:2] == ["python", "bash"], (
        "a Python block, then the commands"
    )
    monkeypatch.chdir(tmp_path)
    ran = []
    for block in steps:
        if block.language == "python":
            _run(block)
            continue
        if block.language != "bash":
            continue
        for command in _commands(block.code):
            argv = shlex.split(command)
            if argv[:1] == ["python"]:
                continue  # the Python block above, saved as that file: it has run
            assert argv[0] == "antialias", command
            capsys.readouterr()
            assert main(argv[1:]) == 0, command
            ran.append(argv[1])
    assert ran.count("train") == 3 and ran[-1] == "eval"
    table = capsys.readouterr().out
    assert "top-1 (%)" in table and "consistency (%)" in table
    assert "anti-aliased" in table and "baseline" in table
    saved = torch.load(tmp_path / "run" / "weights.pt", weights_only=True)
    assert saved["antialias"]["num_classes"] == 10
