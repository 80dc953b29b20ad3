"""The documentation site builds with warnings as errors, and its cross-references are links.

Needs the ``docs`` extra (Sphinx); skipped without it. The build is ``-W -n``: an unresolved
cross-reference in a docstring is an error, so a docstring naming a function that does not exist
fails the build (checked on a small project that names one).
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("sphinx")
pytest.importorskip("myst_parser")

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
RAW_ROLE = re.compile(r":(?:func|class|meth|mod|data|attr|exc|obj|ref|py:\w+):`")


def _sphinx(source: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-n", "-q", "-b", "html", str(source), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = _sphinx(DOCS, out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.slow
def test_api_pages_hold_no_raw_roles_and_link_their_references(site: Path) -> None:
    pages = sorted((site / "api").glob("*.html"))
    assert {p.stem for p in pages} >= {"layers", "models", "conversion", "metrics", "train"}
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not RAW_ROLE.search(text), f"{page.name}: {RAW_ROLE.search(text)}"
    convert = (site / "api" / "conversion.html").read_text(encoding="utf-8")
    # convert()'s docstring names the factory module and layers: links to their entries
    assert 'href="layers.html#module-antialias.layers.factory"' in convert
    assert 'href="layers.html#antialias.layers.' in convert
    assert 'href="https://docs.pytorch.org/docs/stable/generated/torch.nn.Module.html"' in convert


@pytest.mark.slow
def test_guides_are_the_readme_sections(site: Path) -> None:
    convert = (site / "guides" / "convert.html").read_text(encoding="utf-8")
    assert "efficientnet_b0" in convert and "convert_with_report" in convert
    assert "readme-test" not in convert and "<!-- readme:" not in convert
    index = (site / "index.html").read_text(encoding="utf-8")
    assert "Make convolutional networks shift-invariant again" in index
    assert "diagonal.png" in index
    assert (site / "_images" / "diagonal.png").is_file()


def _project(tmp_path: Path, reference: str) -> Path:
    """A one-module project whose function's docstring names ``reference``."""
    source = tmp_path / "docs"
    source.mkdir(parents=True)
    (tmp_path / "tinymod.py").write_text(
        f'def real():\n    """A function."""\n\n\ndef caller():\n    """Calls {reference}."""\n',
        encoding="utf-8",
    )
    (source / "conf.py").write_text(
        "import sys\n"
        f"sys.path[:0] = [{str(tmp_path)!r}, {str(DOCS / '_ext')!r}]\n"
        "extensions = ['sphinx.ext.autodoc', 'sphinx.ext.napoleon', 'references']\n"
        "nitpicky = True\n",
        encoding="utf-8",
    )
    (source / "index.rst").write_text(
        "tinymod\n=======\n\n.. automodule:: tinymod\n   :members:\n", encoding="utf-8"
    )
    return source


def test_a_docstring_naming_a_missing_function_fails_the_build(tmp_path: Path) -> None:
    good = _sphinx(_project(tmp_path / "good", ":func:`real`"), tmp_path / "good-out")
    assert good.returncode == 0, good.stderr
    html = (tmp_path / "good-out" / "index.html").read_text(encoding="utf-8")
    assert 'href="#tinymod.real"' in html
    bad = _sphinx(_project(tmp_path / "bad", ":func:`does_not_exist`"), tmp_path / "bad-out")
    assert bad.returncode != 0
    assert "does_not_exist" in bad.stderr and "reference target not found" in bad.stderr
