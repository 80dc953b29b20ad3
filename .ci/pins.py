"""Print the pins of CI: every package that `.ci/run` installs, at the version installed here.

Run it where `.ci/run` has installed everything (torch, torchvision, the `dev` and `docs` extras):

    python .ci/pins.py > requirements/ci.txt

It walks the requirements from torch, torchvision and this project's `dev` and `docs` extras through
the installed packages' metadata (markers evaluated for this machine) and prints `name==version` for
each, sorted. A requirement that is not installed, or installed at a version it excludes, is an error
naming it: the pins must resolve together on a fresh machine.
"""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import tomllib
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("dev", "docs")
ROOTS = ("torch", "torchvision")


def _applies(requirement: Requirement, extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    environment = dict(default_environment())
    return any(
        requirement.marker.evaluate({**environment, "extra": extra}) for extra in extras or {""}
    )


def pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [(Requirement(r), set()) for r in ROOTS]
    wanted += [(Requirement(r), set()) for r in project["dependencies"]]
    for extra in EXTRAS:
        wanted += [(Requirement(r), set()) for r in project["optional-dependencies"][extra]]
    found: dict[str, str] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    while wanted:
        requirement, parent_extras = wanted.pop()
        if not _applies(requirement, parent_extras):
            continue
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            dist = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            message = f"{requirement.name} is required but not installed: run .ci/run first"
            raise SystemExit(message) from None
        if not requirement.specifier.contains(dist.version, prereleases=True):
            message = f"{requirement.name} {dist.version} is installed, {requirement} is required"
            raise SystemExit(message)
        found[name] = dist.version
        for line in dist.requires or []:
            wanted.append((Requirement(line), set(requirement.extras)))
    return found


def main() -> int:
    lines = [f"{name}=={version}" for name, version in sorted(pins().items())]
    header = [
        "# Pins of every package .ci/run installs (tests, lint, types, docs).",
        "# Refresh: python .ci/pins.py > requirements/ci.txt (after .ci/run installed them)",
    ]
    sys.stdout.write("\n".join(header + lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
