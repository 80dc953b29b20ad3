"""The Triton kernels compile for real GPUs, checked without one.

Every specialisation (one compiled binary each) that a bf16-autocast, channels_last training step of
the zoo's ResNet-50, MobileNetV2 and DenseNet-121 launches is recorded on the CPU and compiled ahead
of time for sm_80 and sm_90 with Triton's bundled ptxas (``benchmarks/gpu.py --compile-cost``, run
in a subprocess: the test process imports Triton in its interpreter, which compiles nothing). The
recorder computes each launch with a torch twin of its kernel; the twins are checked here against
the kernels.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

triton = pytest.importorskip("triton")
pytest.importorskip("torchvision")

from antialias.layers import BlurPool2d, BlurUpsample2d, MaxBlurPool2d  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GPU_PY = ROOT / "benchmarks" / "gpu.py"
ALL_KERNELS = {"separable_kernel"}
# Which kernels each model's step launches: every blur (MaxBlurPool's too, after ATen's max
# pooling), forward and adjoint, is the separable kernel.
EXPECTED_KERNELS = dict.fromkeys(("resnet50", "mobilenet_v2", "densenet121"), ALL_KERNELS)


def _load_gpu_py():
    spec = importlib.util.spec_from_file_location("benchmarks_gpu", GPU_PY)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ptxas() -> str:
    """Triton's ptxas, or a skip naming why there is none."""
    try:
        path = triton.knobs.nvidia.ptxas.path
    except Exception as exc:  # no NVIDIA backend, or no ptxas in it
        pytest.skip(f"Triton has no ptxas here ({type(exc).__name__}: {exc})")
    if not path or not os.access(path, os.X_OK):
        pytest.skip(f"Triton's ptxas is not executable: {path!r}")
    return path


@pytest.mark.slow
def test_training_step_specialisations_compile_for_sm80_and_sm90(tmp_path):
    _ptxas()
    out = tmp_path / "aot.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["TRITON_CACHE_DIR"] = str(tmp_path / "triton_cache")
    # Batch 1 keeps the CPU step short; it specialises as 16 and 128 do for these models (every
    # blurred map holds a multiple of 16 values per image).
    cmd = [sys.executable, str(GPU_PY), "--compile-cost", "--aot-batch", "1", "--output", str(out)]
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    cost = json.loads(out.read_text())["compile_cost"]
    assert set(cost["models"]) == set(EXPECTED_KERNELS)
    for arch, row in cost["models"].items():
        specs = row["specialisations"]
        assert len(specs) == row["count"] > 0
        assert {s["kernel"] for s in specs} == EXPECTED_KERNELS[arch], arch
        for s in specs:
            # a bf16 channels_last step: bf16 tensors, channels fastest, 32-bit offsets
            assert s["types"]["x_ptr"] == s["types"]["y_ptr"] == "*bf16", (arch, s)
            assert s["constexprs"]["CHANNELS_LAST"] is True, (arch, s)
            assert s["constexprs"]["WIDE_INDEX"] is False, (arch, s)
            # a GPU's block (the interpreter's covers the whole tensor)
            assert s["constexprs"]["BLOCK"] <= 4096, (arch, s)
            for target in ("sm_80", "sm_90"):
                assert s["compiled"][target]["cubin_bytes"] > 0, (arch, target, s)
    assert cost["all_models"]["count"] <= sum(r["count"] for r in cost["models"].values())


def _run_layers(gpu, layers, x, record):
    """Outputs and input gradients of ``layers`` on ``x`` (the recorder's twins, or the kernels)."""
    results = []
    for layer in layers:
        xg = x.detach().clone().requires_grad_(True)
        with gpu.record_launches(record=False) if record else contextlib.nullcontext():
            y = layer(xg)
            y.backward(1.0 + torch.arange(y.numel()).reshape(y.shape) % 3)
        results.append((y.detach(), xg.grad))
    return results


def test_recorder_twins_equal_the_kernels(generator, monkeypatch):
    """The recorder's torch twins give the kernels' outputs and input gradients."""
    from antialias.layers import set_backend

    gpu = _load_gpu_py()
    ran = []
    twin = gpu._cpu_launch
    monkeypatch.setattr(gpu, "_cpu_launch", lambda name, a: (ran.append(name), twin(name, a)))
    layers = [
        MaxBlurPool2d(2, channels=6),
        MaxBlurPool2d(3, 2, 1, channels=6, filter_size=3),
        BlurPool2d(6),
        BlurPool2d(6, filter_size=3, pad_mode="zeros"),
        BlurUpsample2d(6, filter_size=4),
    ]
    x = torch.randn(2, 6, 9, 10, generator=generator).contiguous(memory_format=torch.channels_last)
    x[0, 1, 2, 3] = x[0, 1, 2, 4]  # a tie in a max window
    twins = _run_layers(gpu, layers, x, record=True)
    assert set(ran) == ALL_KERNELS
    with set_backend("triton"):
        kernels = _run_layers(gpu, layers, x, record=False)
    for layer, (y, g), (y_ref, g_ref) in zip(layers, twins, kernels, strict=True):
        torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-6, msg=lambda m, n=layer: f"{n}: {m}")
        torch.testing.assert_close(g, g_ref, rtol=0, atol=1e-6, msg=lambda m, n=layer: f"{n}: {m}")
        assert y.is_contiguous(memory_format=torch.channels_last)
