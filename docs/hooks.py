"""MkDocs hooks of the documentation site (``mkdocs.yml``: ``hooks: [docs/hooks.py]``).

1. Guides are README.md's sections, so there is one text to keep right (and ``tests/test_readme.py``
   runs its examples): a page line ``<!-- readme: Section title -->`` becomes that ``## `` section
   of README.md, headings promoted one level and links rewritten for the site.
2. Docstrings use Google style's ``Example:`` (singular) for ``>>>`` examples; griffe knows only
   ``Examples:`` as an examples section and renders the singular as prose, where doctest output such
   as ``[1.0, 0.85]`` reads as a Markdown link. Both spellings are examples here.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GITHUB = "https://github.com/antialias-dev/antialias/blob/main/"
_MARKER = re.compile(r"^<!--\s*readme:\s*(?P<title>.*?)\s*-->\s*$", re.MULTILINE)
_LINK = re.compile(r"(\]\()(?P<target>[^)#\s]+)(?P<rest>[^)]*\))")


def _sections() -> dict[str, str]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.MULTILINE)
    sections = {"": parts[0]}
    for part in parts[1:]:
        title, _, body = part.partition("\n")
        sections[title.strip()] = body
    return sections


def _rewrite_links(text: str, page_dir: str) -> str:
    depth = len(Path(page_dir).parts)
    up = "../" * depth

    def fix(match: re.Match[str]) -> str:
        target = match.group("target")
        if "://" in target or target.startswith(("mailto:", "#")):
            return match.group(0)
        if target.startswith("docs/") and target.endswith(
            "/"
        ):  # a folder: the repository's view of it
            return (
                f"{match.group(1)}{GITHUB.replace('/blob/', '/tree/')}{target}{match.group('rest')}"
            )
        if target.startswith("docs/"):  # a file of the site itself
            return f"{match.group(1)}{up}{target[len('docs/') :]}{match.group('rest')}"
        return f"{match.group(1)}{GITHUB}{target}{match.group('rest')}"  # the repository's file

    return _LINK.sub(fix, text)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    if "<!-- readme:" not in markdown:
        return markdown
    sections = _sections()

    def insert(match: re.Match[str]) -> str:
        title = match.group("title").strip()
        if title not in sections:
            raise ValueError(
                f"{page.file.src_path}: README.md has no section '## {title}' ({sorted(sections)})"
            )
        body = re.sub(
            r"^(#{2,6}) ", lambda m: m.group(1)[1:] + " ", sections[title], flags=re.MULTILINE
        )
        body = re.sub(r"^<!-- readme-test:.*-->\n", "", body, flags=re.MULTILINE)
        return _rewrite_links(body, str(Path(page.file.src_path).parent))

    return _MARKER.sub(insert, markdown)


def on_startup(**_: Any) -> None:
    from griffe import DocstringSectionKind

    try:
        from griffe._internal.docstrings import google
    except ImportError:  # another griffe layout: the singular stays prose
        return
    google._section_kind.setdefault("example", DocstringSectionKind.examples)
