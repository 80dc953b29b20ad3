"""The self-check behind ``convert(..., circular=True)`` and the zoo's ``circular=True``.

A model is returned only if it is seen to be invariant: its output is compared, in evaluation mode
and without gradients, between a random input and its circular shifts by one sample, by the
network's total stride and by a large odd amount (a different one on every axis), on an input whose
sides are multiples of the total stride and, where the model runs on one, not square. A model whose
forward fails on every such input, whose output holds no tensor, or whose output changes is refused
with a ``ValueError``.

The total stride is read from the check's own forward: the largest ratio ``input side / map side``
over the channels-first maps that modules return (for a ResNet, 32); a caller that knows it may pass
it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["check_circular_invariance", "check_report_invariance"]

_SHIFT_TOLERANCE = 1e-4  # of the output's scale: float rounding (APS ties), far below a real change
_SCALES = (1, 2, 4)  # the example size, then larger: circular padding needs maps wider than its pad


def _tensors(value: Any) -> list[Tensor]:
    """Every tensor in a (nested) output: a tensor, a tuple/list, a dict."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _tensors(v)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _tensors(v)]
    return []


def _run(model: nn.Module, x: Tensor, rest: tuple[Any, ...]) -> list[Tensor]:
    with torch.no_grad():
        return _tensors(model(x, *rest))


def _map_shapes(model: nn.Module, x: Tensor, rest: tuple[Any, ...]) -> list[tuple[int, ...]]:
    """The spatial shapes of the channels-first maps that modules return, in call order."""
    shapes: list[tuple[int, ...]] = []

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        shapes.extend(
            tuple(y.shape[2:])
            for y in _tensors(output)
            if y.dim() == x.dim() and y.size(0) == x.size(0)
        )

    handles = [m.register_forward_hook(hook) for m in model.modules()]
    try:
        _run(model, x, rest)
    finally:
        for handle in handles:
            handle.remove()
    return shapes


def _total_stride(
    sides: Sequence[int], shapes: list[tuple[int, ...]], doubled: list[tuple[int, ...]] | None
) -> tuple[int, ...]:
    """The largest exact ratio ``input side / map side`` over the maps that follow the input's size.

    With ``doubled`` (the shapes on an input twice as large) a map counts where all its sides
    doubled (a global pooling's 1 x 1 does not); without, maps of all sides 1 are left out.
    """
    best = [1] * len(sides)
    pairs = (
        zip(shapes, doubled, strict=True)
        if doubled is not None and len(doubled) == len(shapes)
        else None
    )
    if pairs is None:
        kept = [s for s in shapes if not all(m == 1 for m in s)]
    else:
        kept = [s for s, t in pairs if all(2 * m == n for m, n in zip(s, t, strict=True))]
    for shape in kept:
        ratios = [a // m if m and a % m == 0 else 0 for a, m in zip(sides, shape, strict=True)]
        if all(ratios):
            best = [max(b, r) for b, r in zip(best, ratios, strict=True)]
    return tuple(best)


def _odd_shift(side: int, stride: int, axis: int) -> int:
    """A large odd shift, different on each axis and not a multiple of the stride."""
    shift = (side * (axis + 2)) // (2 * axis + 5) | 1
    return shift if shift % max(stride, 2) else shift + 2


def check_circular_invariance(
    model: nn.Module,
    example_inputs: Tensor | tuple[Any, ...],
    suspects: Sequence[str] = (),
    *,
    total_stride: int | Sequence[int] | None = None,
) -> str:
    """Check that circular shifts of the input leave ``model``'s output unchanged, or refuse it.

    Runs in evaluation mode (modes are restored) on random inputs shaped like the first example
    input (its sides rounded up to multiples of the total stride, the last one made longer by the
    total stride where the model accepts it, larger where the example size is too small to run); the
    other example inputs are passed as they are. Shifts: one sample, the total stride, a large odd
    one.

    Args:
        model: the network.
        example_inputs: the positional arguments of a forward call, or the input tensor alone.
        suspects: layers that may break the invariance, named in the error.
        total_stride: the network's total stride per spatial axis (``None``: read from the forward).

    Returns:
        ``"checked: ..."``: the input shape, the shifts and the largest change measured.

    Raises:
        ValueError: the model was not checked (no tensor input, the forward failed on every check
            input, no tensor output) or its output changed by more than float rounding (``1e-4`` of
            its scale).
    """
    inputs = example_inputs if isinstance(example_inputs, tuple) else (example_inputs,)
    if not inputs or not isinstance(inputs[0], Tensor) or inputs[0].dim() < 3:
        raise ValueError(
            "circular=True: the invariance cannot be checked without a (N, C, ...) tensor as the "
            "first example input; pass example_inputs, or convert without circular=True"
        )
    name = type(model).__name__
    first, rest = inputs[0], tuple(inputs[1:])
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        return _check(model, first, rest, suspects, total_stride, name)
    finally:
        for module, mode in modes:
            module.training = mode


def _declared_size(model: nn.Module, ndim: int) -> list[int] | None:
    """The input size a model declares (torchvision's ``image_size``), if any."""
    size = getattr(model, "image_size", None)
    if isinstance(size, int) and not isinstance(size, bool) and size > 0:
        return [size] * ndim
    return None


def _random(shape: Sequence[int], like: Tensor, seed: int = 1) -> Tensor:
    return torch.randn(tuple(shape), generator=torch.Generator().manual_seed(seed)).to(like)


def _check(
    model: nn.Module,
    first: Tensor,
    rest: tuple[Any, ...],
    suspects: Sequence[str],
    total_stride: int | Sequence[int] | None,
    name: str,
) -> str:
    ndim = first.dim() - 2
    errors: list[str] = []
    bases = [[s * scale for s in first.shape[2:]] for scale in _SCALES]
    declared = _declared_size(model, ndim)
    if declared is not None and declared not in bases:
        bases.append(declared)
    for base in bases:
        probe = _random([first.size(0), first.size(1), *base], first)
        try:
            shapes = _map_shapes(model, probe, rest)
        except Exception as exc:  # the model's own error on this input
            errors.append(f"{tuple(probe.shape)}: {type(exc).__name__}: {str(exc)[:160]}")
            continue
        try:
            doubled: list[tuple[int, ...]] | None = _map_shapes(
                model, _random([first.size(0), first.size(1), *(2 * s for s in base)], first), rest
            )
        except Exception:  # a model of one input size: the maps of one forward
            doubled = None
        stride = _total_stride(base, shapes, doubled)
        break
    else:
        raise _unrunnable(name, errors)
    if total_stride is not None:
        given = (total_stride,) * ndim if isinstance(total_stride, int) else tuple(total_stride)
        stride = tuple(max(a, b) for a, b in zip(stride, given, strict=True))
    square = [math.ceil(s / t) * t for s, t in zip(base, stride, strict=True)]
    candidates = [square]
    if ndim >= 2:
        candidates.insert(0, square[:-1] + [square[-1] + stride[-1]])
    for sides in candidates:
        x = _random([first.size(0), first.size(1), *sides], first)
        try:
            reference = _run(model, x, rest)
        except Exception as exc:
            errors.append(f"{tuple(x.shape)}: {type(exc).__name__}: {str(exc)[:160]}")
            continue
        if not reference:
            raise ValueError(
                f"circular=True: {name} was not returned: its output holds no tensor to compare"
            )
        return _compare(model, x, rest, reference, stride, suspects, name, sides != candidates[0])
    raise _unrunnable(name, errors)


def _unrunnable(name: str, errors: list[str]) -> ValueError:
    return ValueError(
        f"circular=True: {name} was not returned: its forward fails on the check inputs "
        f"({'; '.join(errors)}), so its invariance cannot be checked"
    )


def _compare(
    model: nn.Module,
    x: Tensor,
    rest: tuple[Any, ...],
    reference: list[Tensor],
    stride: tuple[int, ...],
    suspects: Sequence[str],
    name: str,
    square_only: bool,
) -> str:
    sides = x.shape[2:]
    dims = tuple(range(2, x.dim()))
    shifts = [
        (1,) * len(dims),
        stride,
        tuple(_odd_shift(s, t, d) for d, (s, t) in enumerate(zip(sides, stride, strict=True))),
    ]
    scale = max([1.0] + [t.abs().max().item() for t in reference if t.numel()])
    worst = 0.0
    for shift in shifts:
        outputs = _run(model, torch.roll(x, shift, dims), rest)
        if len(outputs) != len(reference) or any(
            a.shape != b.shape for a, b in zip(outputs, reference, strict=True)
        ):
            raise ValueError(
                f"{name} is not invariant to circular shifts: a shift by {shift} of a random "
                f"{tuple(x.shape)} input changes the output's shapes"
            )
        diff = max(
            [0.0]
            + [
                (a.float() - b.float()).abs().max().item()
                for a, b in zip(outputs, reference, strict=True)
            ]
        )
        worst = max(worst, diff)
        if not diff <= _SHIFT_TOLERANCE * scale:
            raise ValueError(
                f"{name} is not invariant to circular shifts: a shift by {shift} of a random "
                f"{tuple(x.shape)} input (total stride {stride}) changes the output by {diff:.3g} "
                f"(scale {scale:.3g}). Layers that are not shift-equivariant: "
                f"{', '.join(suspects) or 'none left alone; look for position-dependent'}"
                " operations"
                " (position embeddings, a head that flattens a map, zero padding in forward())"
            )
    note = " (the model runs on square inputs only)" if square_only else ""
    return (
        f"checked: circular shifts by {', '.join(str(s) for s in shifts)} of a random "
        f"{tuple(x.shape)} input{note} change the output by at most {worst:.3g}"
    )


def check_report_invariance(model: nn.Module, inputs: tuple[Any, ...] | str, report: Any) -> str:
    """The check as ``convert(..., circular=True)`` runs it: suspects from the conversion report."""
    if isinstance(inputs, str):
        raise ValueError(
            f"circular=True: the invariance cannot be checked: {inputs}; pass example_inputs"
        )
    suspects = [f"{s.name} ({s.reason})" for s in report.skipped if s.reason != "stride 1"]
    suspects += [f"{n or '<model>'} (not traceable)" for n, _ in report.untraced]
    return check_circular_invariance(model, inputs, suspects)
