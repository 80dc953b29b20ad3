"""CI can fail and is pinned: `.ci/run` installs with the pins, hides no warning, checks formatting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
RUN = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
PINS = ROOT / "requirements" / "ci.txt"


def _pins() -> dict[str, str]:
    pins = {}
    for line in PINS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9._-]+)==([A-Za-z0-9.+!_-]+)", line.strip())
        assert match, f"requirements/ci.txt: not an exact pin: {line!r}"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_every_package_ci_installs_directly_is_pinned_exactly() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = _pins()
    direct = ["torch", "torchvision", *project["dependencies"]]
    for extra in ("dev", "docs"):
        direct += project["optional-dependencies"][extra]
    for line in direct:
        name = canonicalize_name(Requirement(line).name)
        assert name in pins, f"{name} is installed by .ci/run but not pinned"
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"


def test_ci_installs_with_the_pins_and_hides_no_warning() -> None:
    installs = [line for line in RUN.splitlines() if "pip install" in line]
    assert len(installs) >= 3
    for line in installs:
        assert '-c "$PINS"' in line, line
    assert "PINS=requirements/ci.txt" in RUN
    assert '"torch==2.14.1" "torchvision==0.29.1"' in RUN
    assert "python -m ruff format --check antialias tests benchmarks" in RUN
    docs = [line for line in RUN.splitlines() if "sphinx" in line and not line.startswith("#")]
    assert docs and all(" -W " in line and " -n " in line for line in docs), docs
    assert "--quiet" not in "".join(docs) and "mkdocs" not in RUN


def test_readme_quick_start_has_a_cpu_and_a_cuda_command_and_names_the_pins() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    cpu = "pip install torch==2.14.1 torchvision==0.29.1 --index-url https://download.pytorch.org/whl/cpu"
    assert cpu in quick
    assert "\npip install torch==2.14.1 torchvision==0.29.1\n" in quick
    assert (
        quick.index(cpu) < quick.index('pip install -e ".[demo]"') < quick.index("antialias demo")
    )
    assert "requirements/ci.txt" in quick and "python .ci/pins.py > requirements/ci.txt" in quick
