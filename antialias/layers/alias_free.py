"""Alias-free activations (Michaeli et al., CVPR 2023, "Alias-Free Convnets", AFC).

A pointwise nonlinearity creates frequencies above the map's band: ``relu(x)`` of a band-limited map
is not band-limited, and sampling it on the same grid folds them back (aliasing). Then a sub-pixel
shift of the input is no longer a sub-pixel shift of the features. AFC evaluates the nonlinearity on
a finer grid and removes what it added before going back:

    upsample x2 (ideal, by zero-padding the spectrum) -> nonlinearity -> ideal low-pass -> subsample x2

:func:`alias_free_activation` / :class:`AliasFreeActivation` do exactly that over every spatial axis
of a ``(N, C, *spatial)`` map, with FFTs, so the boundary is circular: pair them with circular
convolutions (``convert(..., conv_padding_mode="circular")``) for the shift property.
:func:`replace_activations` (``convert(..., activations="alias_free")``) wraps a CNN's activation
modules.

Convention:
    ``up`` (2) is the upsampling factor. The upsampling is the ideal interpolation of the periodic
    band-limited map (on even sizes the Nyquist bin is split equally between ``+L/2`` and ``-L/2``),
    so it keeps the samples at the original positions; the way down is the ideal low-pass and
    subsampling of :func:`~antialias.layers.fourier.fourier_pool2d`, except that the band edge
    ``|k| = L / 2`` keeps gain 1 (FLC halves it), so that with the identity as the nonlinearity the
    layer returns its input (up to float rounding).

    With ``up = 2`` a ReLU's output is still not band-limited, so the layer reduces aliasing rather
    than removing it; AFC's exact variant uses polynomial activations of degree <= ``up``, whose
    products stay in the finer grid's band (pass ``lambda x: x + 0.1 * x ** 2``, say). Tensors of
    fewer than 3 dimensions (e.g. a classifier's ``(N, C)``) have no spatial axis and get the plain
    activation. An ``Inf`` or ``NaN`` anywhere in a map spreads to the whole map (global transforms).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from antialias.layers.fourier import _fourier_pool

__all__ = [
    "ALIAS_FREE_ACTIVATIONS",
    "AliasFreeActivation",
    "alias_free_activation",
    "replace_activations",
]

ALIAS_FREE_ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.GELU,
    nn.SiLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.Hardswish,
    nn.Mish,
    nn.Softplus,
    nn.Hardtanh,
)
"""The activation modules :func:`replace_activations` wraps by default (parameter-free, elementwise;
gates such as ``Sigmoid``/``Hardsigmoid`` in squeeze-excitation blocks act on ``1 x 1`` maps and are
left alone)."""


def _upsample_axis(x: Tensor, dim: int, factor: int) -> Tensor:
    length = x.size(dim)
    spec = torch.fft.rfft(x, dim=dim, norm="forward")
    if length % 2 == 0 and length > 1:
        # The Nyquist bin stands for +L/2 and -L/2 at once; on the finer grid they are two bins.
        half = torch.ones(spec.size(dim), dtype=x.dtype, device=x.device)
        half[-1] = 0.5
        shape = [1] * x.dim()
        shape[dim] = -1
        spec = spec * half.view(shape)
    pad_shape = list(spec.shape)
    pad_shape[dim] = (factor * length) // 2 + 1 - spec.size(dim)
    spec = torch.cat([spec, spec.new_zeros(pad_shape)], dim)
    return torch.fft.irfft(spec, n=factor * length, dim=dim, norm="forward")


def _alias_free(x: Tensor, activation: Callable[[Tensor], Tensor], up: int) -> Tensor:
    ndim = x.dim() - 2
    if ndim < 1 or up == 1:
        return activation(x)
    work = x if x.dtype in (torch.float32, torch.float64) else x.float()
    for axis in range(ndim):
        work = _upsample_axis(work, axis + 2, up)
    work = activation(work)
    return _fourier_pool(work, (up,) * ndim, None, edge=1.0).to(x.dtype)


def _check_up(up: int) -> int:
    if isinstance(up, bool) or not isinstance(up, int) or up < 1:
        raise ValueError(f"up must be an int >= 1 (the upsampling factor), got {up!r}")
    return up


def alias_free_activation(
    input: Tensor, activation: Callable[[Tensor], Tensor], up: int = 2
) -> Tensor:
    """Apply ``activation`` on a grid ``up`` times finer, low-pass and subsample back (AFC, 2023).

    Args:
        input: a float map ``(N, C, *spatial)`` (1 to 3 spatial axes; fewer dims: plain activation).
        activation: an elementwise function or module.
        up: the upsampling factor.

    Shape:
        - Input: ``(N, C, *spatial)``; Output: same shape.

    Example:
        >>> x = torch.randn(1, 2, 8, 8)
        >>> torch.allclose(alias_free_activation(x, lambda t: t), x, atol=1e-5)
        True
    """
    if not isinstance(input, Tensor) or not input.is_floating_point():
        raise TypeError(
            f"alias_free_activation expects a floating-point Tensor, got {getattr(input, 'dtype', type(input))}"
        )
    if not callable(activation):
        raise TypeError(f"activation must be callable, got {activation!r}")
    return _alias_free(input, activation, _check_up(up))


class AliasFreeActivation(nn.Module):
    """An activation evaluated alias-free: upsample x2, activation, ideal low-pass, subsample (AFC).

    Michaeli et al. (CVPR 2023) make a convnet invariant to sub-pixel circular shifts; this is their
    activation layer, for 1D, 2D and 3D maps (the number of spatial axes is read from the input). It
    holds ``activation`` as a child named ``activation``; a parameter-free activation keeps the
    model's state-dict keys.

    Args:
        activation: the nonlinearity (a module), e.g. ``nn.ReLU()``.
        up: the upsampling factor.

    Shape:
        - Input: ``(N, C, *spatial)``; Output: same shape.

    Convention:
        Circular boundary (FFT); see :mod:`antialias.layers.alias_free`.

    Example:
        >>> act = AliasFreeActivation(nn.GELU())
        >>> act
        AliasFreeActivation(
          up=2
          (activation): GELU(approximate='none')
        )
        >>> act(torch.randn(2, 3, 7, 8)).shape
        torch.Size([2, 3, 7, 8])
    """

    def __init__(self, activation: nn.Module | None = None, up: int = 2) -> None:
        super().__init__()
        activation = nn.ReLU() if activation is None else activation
        if not isinstance(activation, nn.Module):
            raise TypeError(f"activation must be an nn.Module, got {type(activation).__name__}")
        self.activation = activation
        self.up = _check_up(up)

    def forward(self, input: Tensor) -> Tensor:
        return _alias_free(input, self.activation, self.up)

    def extra_repr(self) -> str:
        return f"up={self.up}"


def replace_activations(
    model: nn.Module, types: tuple[type[nn.Module], ...] = ALIAS_FREE_ACTIVATIONS, up: int = 2
) -> list[str]:
    """Wrap every activation module of ``model`` (in place) in :class:`AliasFreeActivation`.

    Only modules are replaced (a ``F.relu`` written in a ``forward`` is not); activations that hold
    parameters (``PReLU``) are left alone so the state-dict keys do not change.

    Args:
        model: the network, edited in place.
        types: the activation classes to wrap.
        up: the upsampling factor.

    Returns:
        The qualified names of the wrapped modules, in module order.

    Example:
        >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.ReLU())
        >>> replace_activations(net)
        ['1', '3']
        >>> type(net[1]).__name__
        'AliasFreeActivation'
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"replace_activations expects an nn.Module, got {type(model).__name__}")
    if not isinstance(types, tuple) or not all(
        isinstance(t, type) and issubclass(t, nn.Module) for t in types
    ):
        raise TypeError(f"types must be a tuple of nn.Module classes, got {types!r}")
    _check_up(up)
    replaced: list[str] = []

    def visit(parent: nn.Module, prefix: str) -> None:
        for name, child in list(parent.named_children()):
            path = f"{prefix}{name}"
            if isinstance(child, AliasFreeActivation):
                continue
            if isinstance(child, types) and not any(True for _ in child.parameters()):
                setattr(parent, name, AliasFreeActivation(child, up).train(child.training))
                replaced.append(path)
            else:
                visit(child, f"{path}.")

    visit(model, "")
    return replaced
