"""``antialias info``: versions, layers, downsampling methods and models available."""

from __future__ import annotations

import argparse
import json
import platform
from typing import Any

from antialias.cli import add_command

__all__ = ["add_parser", "collect_info", "run"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    parser = add_command(
        subparsers,
        "info",
        help="print versions and the available layers and models",
        description="Print versions and the available layers, downsampling methods and models.",
    )
    parser.add_argument("--json", action="store_true", help="print the information as JSON")
    return parser


def collect_info() -> dict[str, Any]:
    """Versions of antialias and its dependencies, and what it offers, as a JSON-ready dict."""
    import torch
    import torchvision

    import antialias
    from antialias import layers

    info: dict[str, Any] = {
        "antialias": antialias.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.cuda.is_available(),
        "layers": sorted(
            name for name in layers.__all__ if name[0].isupper() and name != "PAD_MODES"
        ),
        "downsample_methods": layers.list_downsample_methods(),
    }
    try:
        from antialias.models import list_models
    except ImportError:  # the zoo is optional during development builds
        info["models"] = []
    else:
        info["models"] = list_models()
    return info


def run(args: argparse.Namespace) -> int:
    info = collect_info()
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    width = max(len(key) for key in info)
    for key, value in info.items():
        if isinstance(value, list):
            value = ", ".join(map(str, value)) if value else "(none)"
        print(f"{key:<{width}}  {value}")
    return 0
