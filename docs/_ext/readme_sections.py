"""Guides that are README.md's sections, so that there is one text to keep right.

``tests/test_readme.py`` runs the README's examples. A page line ``<!-- readme: Section title -->``
becomes that ``## `` section of README.md (``<!-- readme: -->``: the text before the first one), its
headings promoted one level and its links rewritten for the site: a file of ``docs/`` links to the
page or image of the site, a folder or any other file of the repository to its view on GitHub.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
GITHUB = "https://github.com/antialias-dev/antialias/"
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
    up = "../" * len(Path(page_dir).parts)

    def fix(match: re.Match[str]) -> str:
        target, rest = match.group("target"), match.group("rest")
        if "://" in target or target.startswith(("mailto:", "#")):
            return match.group(0)
        if target.startswith("docs/") and not target.endswith("/"):  # a page or image of the site
            return f"{match.group(1)}{up}{target[len('docs/') :]}{rest}"
        kind = "tree/main/" if target.endswith("/") else "blob/main/"
        return f"{match.group(1)}{GITHUB}{kind}{target}{rest}"

    return _LINK.sub(fix, text)


def insert_sections(markdown: str, docname: str) -> str:
    """``markdown`` (the page ``docname``) with each ``<!-- readme: ... -->`` line replaced."""
    if "<!-- readme:" not in markdown:
        return markdown
    sections = _sections()

    def insert(match: re.Match[str]) -> str:
        title = match.group("title").strip()
        if title not in sections:
            raise ValueError(f"{docname}: README.md has no section '## {title}'")
        body = re.sub(
            r"^(#{2,6}) ", lambda m: m.group(1)[1:] + " ", sections[title], flags=re.MULTILINE
        )
        body = re.sub(r"^<!-- readme-test:.*-->\n", "", body, flags=re.MULTILINE)
        return _rewrite_links(body, str(Path(docname).parent))

    return _MARKER.sub(insert, markdown)


def _source_read(app: Any, docname: str, source: list[str]) -> None:
    source[0] = insert_sections(source[0], docname)


def setup(app: Any) -> dict[str, Any]:
    app.connect("source-read", _source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
