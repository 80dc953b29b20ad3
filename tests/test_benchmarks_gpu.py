"""benchmarks/gpu.py runs end to end on a CPU with minimal sizes (a smoke check; no timing is asserted)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

pytest.importorskip("torchvision")

GPU_PY = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"


@pytest.mark.slow
def test_gpu_benchmark_smoke_on_cpu(tmp_path):
    spec = importlib.util.spec_from_file_location("benchmarks_gpu", GPU_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = tmp_path / "gpu.json"
    argv = [
        "--device",
        "cpu",
        "--quick",
        "--dtypes",
        "float32",
        "--shapes",
        "1x4x8x8",
        "--archs",
        "resnet18",
        "--image-size",
        "64",
        "--batch",
        "2",
        "--output",
        str(out),
    ]
    assert module.main(argv) == 0
    result = json.loads(out.read_text())
    (layer,) = result["layers"][:1]
    assert layer["shape"] == [1, 4, 8, 8] and "floor" in layer
    assert layer["ours[cpu]/eager"]["fwd"]["median_ms"] > 0 and "ours[slices]/eager" in layer
    assert {row["format"] for row in result["layers"]} == {"NCHW", "channels_last"}
    (net,) = result["networks"]
    assert net["arch"] == "resnet18" and net["torchvision/eager"]["train_img_s"] > 0
    assert (
        net["ours[cpu]/eager"]["infer_img_s"] > 0
        and "ours[cpu]/eager" in net["train_ratio_to_torchvision"]
    )
