"""Module-level pieces of the rewriting engine (:mod:`antialias._rewrite`): what a layer is, and the
edits themselves (swap by qualified name with the hooks moved, train/eval modes, the floor-mode trim,
polyphase phase links in execution order)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import fx, nn
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import _AvgPoolNd, _LPPoolNd, _MaxPoolNd

from antialias import _fx
from antialias.layers.polyphase import link_residual_phases

__all__: list[str] = []

# Their forward's F.* call is theirs, not hidden.
_LEAVES = (_ConvNd, _MaxPoolNd, _AvgPoolNd, _LPPoolNd)
_PATCH_EMBED_MIN_STRIDE = 8
_PLAIN_CONVS = {nn.Conv1d: 1, nn.Conv2d: 2, nn.Conv3d: 3}


def _describe(module: nn.Module, depth: int = 0) -> str:
    """A one-line form of a module: ``Type(extra_repr, child=Type(...), ...)``."""
    parts = [module.extra_repr()]
    children = list(module.named_children())
    if children and depth >= 1:
        parts.append("...")
    else:
        parts += [f"{name}={_describe(child, depth + 1)}" for name, child in children]
    return f"{type(module).__name__}({', '.join(p for p in parts if p)})"


def _brief(module: nn.Module) -> str:
    """A short form of a module for the report's lines: ``Conv2d(k=3, s=2)``, ``BlurPool2d(s=2)``,
    ``Sequential(MaxPool2d(k=2, s=1), BlurPool2d(s=2))``."""
    args = [
        f"{key}={_compact(getattr(module, attr))}"
        for key, attr in (("k", "kernel_size"), ("s", "stride"))
        if isinstance(getattr(module, attr, None), (int, tuple, list))
    ]
    children = dict(module.named_children())
    blur = children.get("blur")
    if isinstance(module, nn.Sequential) or not args:
        args = [_brief(child) for child in children.values()]
    elif blur is not None and len(children) == 1:  # BlurConv: blur first, then the convolution
        args = [args[0], f"blur s={_compact(getattr(blur, 'stride', '?'))}"]
    elif children:
        args += [f"{name}={_brief(child)}" for name, child in children.items()]
    return f"{type(module).__name__}({', '.join(args)})"


def _brief_change(old: str, new: str) -> str:
    """``old -> new`` of two short forms, or one form with the changed values when only they differ:
    ``Conv2d(k=3, s=2->1)``."""
    head, _, rest = old.partition("(")
    new_head, _, new_rest = new.partition("(")
    parts, new_parts = rest.rstrip(")").split(", "), new_rest.rstrip(")").split(", ")
    if head != new_head or len(parts) != len(new_parts) or "(" in rest + new_rest:
        return f"{old} -> {new}"
    merged = [
        a if a == b else f"{a}->{b.partition('=')[2]}"
        for a, b in zip(parts, new_parts, strict=True)
    ]
    return f"{head}({', '.join(merged)})"


def _compact(value: Any) -> str:
    values = list(value) if isinstance(value, (tuple, list)) else [value]
    return str(values[0]) if len(set(values)) == 1 else f"({', '.join(map(str, values))})"


def _tuple(value: Any, ndim: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * ndim


def _has_state(module: nn.Module) -> bool:
    return bool(module.state_dict())


def _is_plain_conv(module: nn.Module) -> bool:
    return type(module) in _PLAIN_CONVS


def _pool_ndim(module: nn.Module) -> int:
    for klass in type(module).__mro__:
        name = klass.__name__
        if klass.__module__ == "torch.nn.modules.pooling" and name[-2:] in ("1d", "2d", "3d"):
            return int(name[-2])
    raise ValueError(f"cannot tell the dimension of {type(module).__name__}")


def _same_forward(module: nn.Module, base: type[nn.Module]) -> bool:
    return type(module).forward is base.forward


def _pool_base(module: nn.Module) -> type[nn.Module]:
    for klass in type(module).__mro__:
        if klass.__module__ == "torch.nn.modules.pooling":
            return klass
    return type(module)


def _strided(module: nn.Module) -> bool:
    if isinstance(module, _ConvNd):
        return not module.transposed and any(s > 1 for s in module.stride)
    if isinstance(module, (_MaxPoolNd, _AvgPoolNd, _LPPoolNd)):
        ndim = _pool_ndim(module)
        stride = module.stride if module.stride is not None else module.kernel_size
        return any(s > 1 for s in _tuple(stride, ndim))
    return False


def _wanted(module: nn.Module) -> bool:
    return isinstance(module, (_ConvNd, _MaxPoolNd, _AvgPoolNd))


def _swap(
    module: nn.Module, replacements: dict[str, nn.Module], moved: list[str], prefix: str = ""
) -> nn.Module:
    """Return the replacement of ``module``, or ``module`` with its replaced descendants swapped in.

    The hooks of a replaced module move to its replacement (named in ``moved``), unless the
    replacement contains the module (a wrapping ``Sequential``), where they still fire.
    """
    if prefix in replacements:
        new = replacements[prefix]
        if _move_hooks(module, new):
            moved.append(prefix or "<model>")
        return new
    if not any(name.startswith(prefix) for name in replacements):
        return module
    # Every registered name, not named_children(): that one yields a module held twice once only.
    for name, child in list(module._modules.items()):
        if child is None:
            continue
        full = f"{prefix}.{name}" if prefix else name
        if full in replacements or any(key.startswith(full + ".") for key in replacements):
            new = _swap(child, replacements, moved, full)
            if new is not child:
                setattr(module, name, new)
    return module


def _move_hooks(old: nn.Module, new: nn.Module) -> bool:
    """Give ``new`` the hook dicts of ``old`` (the users' handles still remove them); ``True`` if any."""
    if any(m is old for m in new.modules()) or not any(
        getattr(old, attr, None) for attr in _fx.HOOK_DICTS
    ):
        return False
    for attr in _fx.HOOK_DICTS:
        if hasattr(old, attr):
            setattr(new, attr, getattr(old, attr))
    if getattr(old, "_is_full_backward_hook", None) is not None:
        new._is_full_backward_hook = old._is_full_backward_hook
    return True


def _follow_mode(new: nn.Module, old: nn.Module) -> None:
    """The modules that ``new`` brings follow the train/eval mode of the module they replace."""
    kept = {id(m) for m in old.modules()}
    for module in new.modules():
        if id(module) not in kept:
            module.training = old.training


def _divisor(pool: nn.Module) -> int | None:
    return getattr(pool, "divisor_override", None)


def _link_phases(model: nn.Module, order: dict[str, int]) -> None:
    """Polyphase methods: each residual block's shortcut keeps its main path's phase
    (:func:`~antialias.layers.link_residual_phases`), but the layer that ran first in the example forward
    leads: a DLA tree subsamples its shortcut before its main path."""
    roots: dict[int, Any] = {}
    for leader_name, follower_name in link_residual_phases(model):
        leader: Any = model.get_submodule(leader_name)
        follower: Any = model.get_submodule(follower_name)
        if _call_index(order, follower_name) >= _call_index(order, leader_name):
            continue
        root = roots.setdefault(id(leader), follower)
        if root is follower:
            follower.follow(None)
            if getattr(leader, "scorer", None) is not None:
                # LPS: the scorer moves to the layer that now chooses.
                follower.scorer = leader.scorer
            leader.follow(follower)
        else:
            follower.follow(root)


def _call_index(order: dict[str, int], name: str) -> float:
    """The example forward's first call of ``name``, or of its closest recorded ancestor (new layers)."""
    parts = name.split(".")
    for end in range(len(parts), -1, -1):
        if (key := ".".join(parts[:end])) in order:
            return order[key]
    return float("inf")


@dataclass
class _Site:
    """Where the downsampling layer of a strided convolution goes (rules 1-5 of the module docstring)."""

    kind: str  # "identity" | "consumer" | "append" | "wrap" | "graph"
    module: str  # the module to edit (for "graph": the node's value, described in ``where``)
    where: str  # the module or node the layer follows, for the report
    region: _fx.Region | None = None
    node: fx.Node | None = None


@dataclass
class _ConvJob:
    name: str
    kind: str  # "after" | "before" | "before-dense" | "split" | "anchor" | "skip"
    ndim: int
    channels: int
    stride: tuple[int, ...]
    conv_stride: tuple[int, ...] = ()
    reason: str = ""
    site: _Site | None = None
    placement: str = ""  # the report's placement, where the job states it (patchify convolutions)
    token_anchor: bool = False  # "anchor": also anchor the token grid
    score: str = "input"  # "anchor": what the phase is chosen by


def _placed(job: _ConvJob) -> _Site:
    assert job.site is not None, job.name
    return job.site
