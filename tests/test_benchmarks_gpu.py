"""benchmarks/gpu.py runs end to end on a CPU with minimal sizes (a smoke check; no timing is
asserted), and benchmarks/gpu_check.sh parses and lists its parts."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("torchvision")

GPU_PY = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.py"
GPU_CHECK = GPU_PY.with_name("gpu_check.sh")


def _load():
    spec = importlib.util.spec_from_file_location("benchmarks_gpu", GPU_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_gpu_benchmark_smoke_on_cpu(tmp_path):
    module = _load()
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
    assert net["torchvision/eager"]["first_step_s"] > 0
    assert net["train_ratio_to_torchvision_same_mode"]["torchvision/eager"] == 1.0
    assert (
        net["ours[cpu]/eager"]["infer_img_s"] > 0
        and "ours[cpu]/eager" in net["train_ratio_to_torchvision"]
    )


def test_train_ratios_per_mode():
    row = {
        "torchvision/eager": {"train_img_s": 100.0},
        "torchvision/compiled": {"train_img_s": 200.0},
        "ours[triton]/eager": {"train_img_s": 80.0},
        "ours[slices]/compiled": {"train_img_s": 170.0},
        "reference/eager": {"error": "ImportError"},
    }
    _load()._train_ratios(row)
    assert row["train_ratio_to_torchvision"]["ours[slices]/compiled"] == 1.7
    assert row["train_ratio_to_torchvision_same_mode"] == {
        "torchvision/eager": 1.0,
        "torchvision/compiled": 1.0,
        "ours[triton]/eager": 0.8,
        "ours[slices]/compiled": 0.85,
    }


def test_compile_hook_round_trip_and_comparison():
    gpu = _load()
    spec = gpu.Specialisation(
        kernel="separable_kernel",
        signature=(("x_ptr", "*bf16"), ("C", "i32"), ("BLOCK", "constexpr")),
        constexprs=(((2,), 512),),
        attrs=(((0,), (("tt.divisibility", 16),)), ((1,), ())),
        options=(),
    )
    hook_argument = {  # what Triton passes its jit_cache_hook as ``compile``
        "signature": {"x_ptr": "*bf16", "C": "i32", "BLOCK": "constexpr"},
        "constants": {(2,): 512},
        "configs": [{(0,): [["tt.divisibility", 16]], (1,): []}],
    }
    assert gpu._from_compile_hook("separable_kernel", hook_argument) == spec
    assert gpu.compare_specialisations([spec], [spec])["same_as_recorded"]
    other = spec._replace(constexprs=(((2,), 1024),))
    diff = gpu.compare_specialisations([spec], [spec, other])
    assert diff["count"] == 2 and not diff["same_as_recorded"] and not diff["only_recorded"]
    assert [d["constexprs"] for d in diff["only_on_cuda"]] == [{"BLOCK": 1024}]
    assert spec.describe()["divisible_by_16"] == ["x_ptr"]


def test_compile_cost_arguments():
    args = _load().get_args_parser().parse_args(["--compile-cost"])
    assert args.compile_cost and args.aot_targets == ["sm_80", "sm_90"]
    assert args.aot_archs == ["resnet50", "mobilenet_v2", "densenet121"] and args.aot_batch == 1


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_gpu_check_script_parses_and_dry_runs(tmp_path):
    subprocess.run(["bash", "-n", str(GPU_CHECK)], check=True)
    help_text = subprocess.run(
        ["bash", str(GPU_CHECK), "--help"], check=True, capture_output=True, text=True
    ).stdout
    assert "$OUT" in help_text and "DRY_RUN=1" in help_text
    env = dict(os.environ, DRY_RUN="1", OUT=str(tmp_path / "out"))
    plan = subprocess.run(
        ["bash", str(GPU_CHECK)], check=True, capture_output=True, text=True, env=env
    ).stdout.splitlines()
    assert not (tmp_path / "out").exists()  # a dry run writes nothing
    assert all(line.startswith("timeout ") for line in plan), plan
    text = "\n".join(plan)
    for part in (
        "tests/layers/test_triton.py",
        "--compile-cost",
        "--sections layers",
        "--net-modes eager",
        "--net-modes compiled",
    ):
        assert part in text, part
    assert (
        text.count("--output " + str(tmp_path / "out")) == 4
    )  # every benchmark writes JSON under $OUT
    # the parts' limits fit the device budget (15 minutes, start-up and a rerun's margin included)
    assert sum(int(re.match(r"timeout (\d+)", line)[1]) for line in plan) <= 8 * 60
