"""``antialias info``: versions, layers, downsampling methods, layer constants and models available."""

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
        description="Print versions and the available layers, downsampling methods, the values "
        "layer options accept (layer constants) and models.",
    )
    parser.add_argument("--json", action="store_true", help="print the information as JSON")
    return parser


def collect_info() -> dict[str, Any]:
    """Versions of antialias and its dependencies, and what it offers, as a JSON-ready dict."""
    import torch
    import torchvision

    import antialias
    from antialias import layers

    public = {name: getattr(layers, name) for name in layers.__all__}
    info: dict[str, Any] = {
        "antialias": antialias.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "cuda": torch.cuda.is_available(),
        "layers": sorted(
            name
            for name, value in public.items()
            if isinstance(value, type) and issubclass(value, torch.nn.Module)
        ),
        "downsample_methods": layers.list_downsample_methods(),
        # The option values the layers accept (pad modes, norms, wavelets...): not layers.
        "layer_constants": {
            name: [v.__name__ if isinstance(v, type) else v for v in value]
            for name, value in sorted(public.items())
            if name.isupper()
        },
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
    constants = info.pop("layer_constants")
    width = max(len(key) for key in info)
    for key, value in info.items():
        if isinstance(value, list):
            value = ", ".join(map(str, value)) if value else "(none)"
        print(f"{key:<{width}}  {value}")
    print("layer constants (values of layer options):")
    inner = max(len(key) for key in constants)
    for key, value in constants.items():
        print(f"  {key:<{inner}}  {', '.join(map(str, value))}")
    return 0
