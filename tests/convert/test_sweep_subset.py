"""A representative subset of ``benchmarks/convert_sweep.py``: one model per failure class of
the full sweep and a dozen others, each converted, run in evaluation mode with the original's output
shapes and trained one step, with the state dict kept and every strided layer in the report."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
import torch

_SPEC = importlib.util.spec_from_file_location(
    "convert_sweep", Path(__file__).parents[2] / "benchmarks" / "convert_sweep.py"
)
assert _SPEC is not None and _SPEC.loader is not None
sweep: Any = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(sweep)

# model -> what its failure class must show in the result
FAILURE_CLASSES = {
    "timm::resnest14d": {},  # channel count read from the graph was wrong (split attention)
    "timm::coat_tiny": {"graph_modules": True},  # a GraphModule lost PatchEmbed.grid_size
    "timm::twins_svt_small": {},  # untraceable kernel == stride convolutions shrank the maps
    "timm::dm_nfnet_f0": {},  # in-place op after the blur (training)
    "timm::dla46x_c": {},  # APS leader ran after its follower (checked in test_failure_classes)
    "torchvision::googlenet": {"converted_ceil": True},  # ceil_mode pools shrank the maps
    "torchvision::squeezenet1_0": {"converted_ceil": True},
    "timm::levit_128s": {"functional": True},  # slicing subsampling, found at run time
    "torchvision:optical_flow:raft_small": {
        "functional": True
    },  # F.avg_pool2d in the correlation pyramid
}
OTHERS = [
    "torchvision::resnet18",
    "torchvision::mobilenet_v3_small",
    "torchvision::efficientnet_b0",
    "torchvision::shufflenet_v2_x0_5",
    "torchvision::regnet_x_400mf",
    "torchvision::mnasnet0_5",
    "torchvision:quantization:mobilenet_v2",
    "torchvision:segmentation:lraspp_mobilenet_v3_large",
    "torchvision:detection:fasterrcnn_mobilenet_v3_large_320_fpn",
    "torchvision:video:r2plus1d_18",
    "timm::efficientvit_b0",
    "timm::ghostnet_050",
]


@pytest.mark.slow
@pytest.mark.parametrize("spec", list(FAILURE_CLASSES) + OTHERS)
def test_convert_sweep_subset(spec: str) -> None:
    result = sweep.run_one(spec)
    assert result["status"] == "ok", result
    assert result["state_kept"] and result["eval_shapes_kept"] and result["trains"]
    assert result["unreported"] == [] and result["converted"] > 0
    expect = FAILURE_CLASSES.get(spec, {})
    if expect.get("functional"):
        assert result["functional"], result
    if expect.get("graph_modules"):
        assert result["graph_modules"] > 0, result
    if expect.get("converted_ceil"):
        assert result["ceil_pools"] > 0, result


# inputs the models' own configurations ask for (built on the meta device: no weights, no compute)
INPUTS = {
    "torchvision:video:mvit_v1_b": [
        1,
        3,
        16,
        224,
        224,
    ],  # fixed positional embedding (weights' min size, frames)
    "torchvision:video:s3d": [1, 3, 14, 224, 224],  # its final 2 x 7 x 7 pooling
    "torchvision::inception_v3": [2, 3, 299, 299],  # the auxiliary classifier in training mode
    "torchvision::resnet18": [2, 3, 96, 96],  # the default small input
    "timm::deepseek_vit_412m": [2, 3, 126, 126],  # min_input_size, a multiple of its patch size 14
    "timm::convmixer_768_32": [2, 3, 98, 98],  # 96 rounded up to its patch size 7
    "timm::halonet_h1": [2, 3, 256, 256],  # min_input_size (its halo attention blocks)
    "timm::vit_tiny_patch16_224": [2, 3, 224, 224],  # fixed_input_size
}


@pytest.mark.parametrize(("spec", "shape"), INPUTS.items())
def test_input_from_model_config(spec: str, shape: list[int]) -> None:
    with torch.device("meta"):
        _, inputs, _ = sweep._build(spec)
    assert sweep._shapes(inputs) == [shape]


def test_model_set_follows_the_rule() -> None:
    """The committed set: every torchvision model, and one timm model per family, the smallest."""
    import timm

    data = json.loads(sweep.MODELS_FILE.read_text())
    assert data["torchvision"] == sweep.torchvision_models()
    families: dict[str, list[str]] = {}
    for module in timm.list_modules():
        for name in timm.list_models(module=module, exclude_filters=["test_*"]):
            families.setdefault(sweep.timm_family(module, name), []).append(name)
    assert sorted(data["timm"]) == sorted(families)
    for family, entry in data["timm"].items():
        assert entry["model"] in families[family] and entry["names"] == len(families[family]), (
            family
        )
    # the pick is the smallest of all the family's names: recounted for a few families
    for family in ("ghostnet:ghostnetv2", "byoanet:halonet", "vision_transformer_sam:samvit"):
        counts = {name: sweep.count_parameters(name) for name in families[family]}
        assert (
            data["timm"][family]["params"]
            == counts[data["timm"][family]["model"]]
            == min(counts.values())
        )
    assert sweep.timm_family("resnet", "seresnext26d_32x4d") == "resnet:seresnext"
    assert sweep.timm_family("convnext", "convnextv2_atto") == "convnext:convnextv2"
    assert sweep.all_models()[: len(data["torchvision"])] == data["torchvision"]
