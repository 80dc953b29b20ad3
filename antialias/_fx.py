"""torch.fx analysis for :func:`antialias.convert`: trace a model, find where a strided convolution's
output has passed its normalization and activation, and name the module that can take the downsampling.

Analysis only happens on traced graphs; the converter edits the modules themselves wherever it can, so
the converted model keeps its classes and its state-dict keys. A graph is turned into a
``torch.fx.GraphModule`` only where no module edit can place the layer (see :func:`insert_after`).
"""

from __future__ import annotations

import logging
import re
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.nn.modules.batchnorm import _NormBase
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.pooling import _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd, _AvgPoolNd, _MaxPoolNd

__all__ = [
    "ConvertTracer",
    "Observation",
    "Region",
    "call_counts",
    "data_users",
    "enclosing_module",
    "follow_chain",
    "insert_after",
    "is_activation",
    "is_chain_input",
    "is_norm",
    "observe",
    "output_of",
    "strided_call",
    "trace",
    "trace_regions",
]

logger = logging.getLogger(__name__)

_NATIVE_NORMS = (_NormBase, nn.GroupNorm, nn.LayerNorm, nn.LocalResponseNorm)
# Activation modules of other libraries (timm's Swish, HardSwish ...) are recognised by name when they
# hold no parameters and no children.
_ACT_NAME = re.compile(r"ReLU|ELU|GELU|SiLU|Swish|Mish|Sigmoid|Tanh|Hard|Softplus|Act(ivation)?$")
_NOT_ACTIVATIONS = (nn.MultiheadAttention, nn.Softmax, nn.Softmin, nn.LogSoftmax, nn.Softmax2d)

# Functions and tensor methods that map a map to a map of the same grid, sample by sample or per channel:
# a downsampling layer may move past them (the paper places it after the norm and the activation).
_PASS_FUNCTIONS: set[Any] = {
    F.relu,
    F.relu_,
    F.relu6,
    F.silu,
    F.gelu,
    F.hardswish,
    F.hardsigmoid,
    F.hardtanh,
    F.hardtanh_,
    F.leaky_relu,
    F.leaky_relu_,
    F.elu,
    F.elu_,
    F.selu,
    F.celu,
    F.mish,
    F.softplus,
    F.prelu,
    F.sigmoid,
    F.tanh,
    F.dropout,
    F.dropout1d,
    F.dropout2d,
    F.dropout3d,
    F.batch_norm,
    F.group_norm,
    F.layer_norm,
    F.instance_norm,
    torch.relu,
    torch.relu_,
    torch.sigmoid,
    torch.tanh,
    torch.clamp,
    torch.batch_norm,
}
_PASS_METHODS = {
    "relu",
    "relu_",
    "sigmoid",
    "sigmoid_",
    "tanh",
    "tanh_",
    "clamp",
    "clamp_",
    "contiguous",
}


def is_norm(module: nn.Module) -> bool:
    """A normalization layer: torch's, or a childless module whose class name says so (FrozenBatchNorm2d)."""
    if isinstance(module, _NATIVE_NORMS):
        return True
    return "Norm" in type(module).__name__ and not any(True for _ in module.children())


def is_activation(module: nn.Module) -> bool:
    if isinstance(module, _NOT_ACTIVATIONS) or any(True for _ in module.children()):
        return False
    if type(module).__module__ == "torch.nn.modules.activation":
        return True
    return bool(_ACT_NAME.search(type(module).__name__)) and not any(
        True for _ in module.parameters()
    )


def _is_dropout(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.dropout._DropoutNd) or (
        "Drop" in type(module).__name__
        and not any(True for _ in module.parameters())
        and not any(True for _ in module.children())
    )


def _is_pass_module(module: nn.Module) -> bool:
    return (
        isinstance(module, nn.Identity)
        or is_norm(module)
        or is_activation(module)
        or _is_dropout(module)
    )


class ConvertTracer(fx.Tracer):
    """``torch.fx.Tracer`` that keeps convolutions, pools, childless norms and anti-aliasing layers as leaves.

    Subclasses of ``nn.Conv2d`` from other libraries (timm's ``StdConv2d``, ``Conv2dSame``) then appear as
    one ``call_module`` node, as torch's own do, and norms with children (timm's ``BatchNormAct2d``) are
    traced through, so their activation is a node of its own.
    """

    # Buffers become graph inputs too: a traced ``self.num_batches_tracked.add_(1)`` (timm's
    # BatchNormAct2d in training mode) must be recorded, not run on the model.
    proxy_buffer_attributes = True

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        if isinstance(m, (_ConvNd, _MaxPoolNd, _AvgPoolNd, _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd)):
            return True
        if type(m).__module__.startswith("antialias.layers"):
            return True  # their input checks branch on shapes, which fx cannot trace
        if is_norm(m) and not any(True for _ in m.children()):
            return True
        if isinstance(m, _NATIVE_NORMS) and any(True for _ in m.children()):
            return False  # a norm with an activation inside (timm's BatchNormAct2d): trace through
        return super().is_leaf_module(m, module_qualified_name)


@dataclass
class Region:
    """A traced submodule: ``prefix`` is its qualified name in the model (``""`` for the model itself)."""

    prefix: str
    module: nn.Module
    graph: fx.Graph

    def absolute(self, name: str) -> str:
        """The model-level name of a name relative to this region."""
        if not self.prefix:
            return name
        return f"{self.prefix}.{name}" if name else self.prefix


def trace(module: nn.Module) -> fx.Graph:
    return ConvertTracer().trace(module)


def trace_regions(
    module: nn.Module, wanted: Callable[[nn.Module], bool], prefix: str = ""
) -> tuple[list[Region], list[tuple[str, str]]]:
    """Trace ``module``; where it cannot be traced, trace its largest traceable submodules instead.

    Only submodules for which ``wanted`` holds somewhere below them are tried. Returns the traced regions
    in module order and the ``(name, error)`` of every module that could not be traced.
    """
    regions: list[Region] = []
    failures: list[tuple[str, str]] = []
    try:
        graph = trace(module)
    except Exception as exc:  # any error in a user's forward under tracing means "not traceable"
        message = str(exc).split(". ")[0].splitlines()[0] if str(exc) else ""
        failures.append((prefix, f"{type(exc).__name__}: {message}"))
        logger.debug("cannot trace %r: %s", prefix or type(module).__name__, exc)
        for name, child in module.named_children():
            if ConvertTracer().is_leaf_module(child, name) or not any(
                wanted(m) for m in child.modules()
            ):
                continue
            sub_regions, sub_failures = trace_regions(
                child, wanted, f"{prefix}.{name}" if prefix else name
            )
            regions += sub_regions
            failures += sub_failures
        return regions, failures
    regions.append(Region(prefix, module, graph))
    return regions, failures


def _stack(node: fx.Node) -> list[tuple[str, str]]:
    """The ``(call key, qualified name)`` of the modules whose forward produced ``node``, outermost first."""
    stack = node.meta.get("nn_module_stack") or {}
    return [(key, value[0]) for key, value in stack.items()]


def is_chain_input(node: fx.Node, value: fx.Node) -> bool:
    """``node`` takes ``value`` as its first argument and no other graph value except parameters."""
    if not node.args or node.args[0] is not value:
        return False
    others = list(node.args[1:]) + list(node.kwargs.values())
    return all(not isinstance(a, fx.Node) or a.op == "get_attr" for a in others)


def _passes(node: fx.Node, value: fx.Node, get_module: Callable[[str], nn.Module]) -> bool:
    if not is_chain_input(node, value):
        return False
    if node.op == "call_module":
        return _is_pass_module(get_module(str(node.target)))
    if node.op == "call_function":
        return node.target in _PASS_FUNCTIONS
    if node.op == "call_method":
        return node.target in _PASS_METHODS
    return False


# Reads that do not depend on the map's size (shape reads do: they are real users of the value).
_METADATA_ATTRS = {"ndim", "dtype", "device", "is_cuda", "layout", "requires_grad"}
_METADATA_METHODS = {"dim", "type", "get_device", "is_contiguous"}


def _is_metadata(node: fx.Node) -> bool:
    """A node that reads a tensor's metadata (``x.ndim``, ``x.dtype``), not its values or size."""
    if node.op == "call_function" and node.target is getattr:
        return len(node.args) > 1 and node.args[1] in _METADATA_ATTRS
    return node.op == "call_method" and node.target in _METADATA_METHODS


def data_users(node: fx.Node) -> list[fx.Node]:
    """The users of ``node`` that read its values or size (``x.ndim`` checks, as timm's, excluded)."""
    return [user for user in node.users if not _is_metadata(user)]


def follow_chain(node: fx.Node, get_module: Callable[[str], nn.Module]) -> fx.Node:
    """Walk from ``node`` through its following norms, activations, dropouts and identities.

    Each step needs a single user that takes the value as its only graph input (besides parameters);
    the walk stops before a branch, an addition, a convolution or a pooling. Returns the last node.
    """
    current = node
    while len(users := data_users(current)) == 1:
        (user,) = users
        if not _passes(user, current, get_module):
            break
        current = user
    return current


def output_of(node: fx.Node) -> list[tuple[str, str]]:
    """The modules (``(call key, name)``, innermost first) whose call returns ``node``'s value.

    A module call returns the node when no user of the node lies inside that call.
    """
    found = []
    for key, name in reversed(_stack(node)):
        if any(key in (user.meta.get("nn_module_stack") or {}) for user in data_users(node)):
            break
        found.append((key, name))
    return found


def enclosing_module(node: fx.Node) -> tuple[str, str] | None:
    """The innermost module call in whose own ``forward`` the node was produced (``None``: the region root)."""
    stack = _stack(node)
    if node.op == "call_module":
        stack = stack[:-1]  # the node's own module
    return stack[-1] if stack else None


def call_counts(graph: fx.Graph) -> dict[str, int]:
    """How many times each module (leaf or not, by qualified name) is called in ``graph``.

    Every call of a module has its own key in the nodes' ``nn_module_stack`` (``"relu"``, ``"relu@1"``).
    """
    keys: dict[str, set[str]] = {}
    for node in graph.nodes:
        for key, name in _stack(node):
            keys.setdefault(name, set()).add(key)
    return {name: len(calls) for name, calls in keys.items()}


def _signature(node: fx.Node, outer: str) -> tuple[Any, ...]:
    """Identify ``node`` inside the call of module ``outer`` by names relative to ``outer``.

    A module call is identified by its target; a function or method call also by the modules whose
    forward made it (a GraphModule made earlier flattens those, so they are not used for modules).
    """

    def rel(name: str) -> str:
        return name[len(outer) + 1 :] if outer and name.startswith(outer + ".") else name

    if node.op == "call_module":
        return (node.op, rel(str(node.target)))
    inner = tuple(
        rel(name) for _, name in _stack(node) if not outer or name.startswith(outer + ".")
    )
    return (node.op, node.target, inner)


def _nodes_inside(graph: fx.Graph, key: str | None) -> Iterator[fx.Node]:
    for node in graph.nodes:
        if key is None or key in (node.meta.get("nn_module_stack") or {}):
            yield node


def insert_after(
    region: Region, insertions: list[tuple[fx.Node, nn.Module, str]]
) -> tuple[str, fx.GraphModule] | None:
    """Re-trace the innermost module whose forward produced the nodes and insert each layer after its node.

    ``insertions`` holds ``(node of region.graph, layer, name for the layer)``; all nodes must come from
    the same module call (:func:`enclosing_module`). Returns ``(qualified name of that module, its
    GraphModule replacement)``, or ``None`` when the module cannot be re-traced on its own, a node
    cannot be found again, or the GraphModule would not keep the module's state dict.
    """
    outer = enclosing_module(insertions[0][0])
    outer_key, outer_name = outer if outer is not None else (None, "")
    module = region.module.get_submodule(outer_name) if outer_name else region.module
    inside = list(_nodes_inside(region.graph, outer_key))
    wanted = []
    for node, _, _ in insertions:
        signature = _signature(node, outer_name)
        index = sum(
            1
            for other in inside[: inside.index(node)]
            if _signature(other, outer_name) == signature
        )
        wanted.append((signature, index))
    try:
        graph = trace(module)
    except Exception as exc:  # any error in a user's forward under tracing means "not traceable"
        logger.debug("cannot re-trace %r: %s", outer_name, exc)
        return None
    targets = []
    for signature, index in wanted:
        matches = [n for n in graph.nodes if _signature(n, "") == signature]
        if len(matches) <= index:
            return None
        targets.append(matches[index])
    gm = fx.GraphModule(module, graph, class_name=type(module).__name__)
    _copy_missing_state(module, gm)
    _order_like(module, gm)
    _copy_plain_attributes(module, gm)
    expected = set(module.state_dict())
    taken = {n for n, _ in module.named_modules()}
    for target, (_, layer, layer_name) in zip(targets, insertions, strict=True):
        name, suffix = layer_name, 1
        while name in taken:
            name, suffix = f"{layer_name}_{suffix}", suffix + 1
        taken.add(name)
        gm.add_submodule(name, layer)
        expected |= set(layer.state_dict(prefix=name + "."))
        with gm.graph.inserting_after(target):
            inserted = gm.graph.call_module(name, (target,))
        target.replace_all_uses_with(
            inserted, delete_user_cb=lambda user, new=inserted: user is not new
        )
    gm.recompile()
    if set(gm.state_dict()) != expected:
        return None
    return region.absolute(outer_name), gm


def _copy_plain_attributes(module: nn.Module, gm: fx.GraphModule) -> None:
    """Give ``gm`` the plain attributes of ``module`` that its parent may read (timm's
    ``PatchEmbed.grid_size``), and its train/eval mode."""
    for key, value in vars(module).items():
        if not key.startswith("_") and key not in vars(gm) and not hasattr(type(gm), key):
            setattr(gm, key, value)
    gm.training = module.training  # not recursive: its children keep their own modes


def _order_like(original: nn.Module, new: nn.Module) -> None:
    """Order the parameters, buffers and children of ``new`` (and of its new containers) as in ``original``.

    A GraphModule holds its submodules in the order its graph first uses them, and
    :func:`_copy_missing_state` appends the rest: the state dict would keep its keys but not their order.
    """
    if new is original:
        return
    for attr in ("_parameters", "_buffers", "_modules"):
        mine, theirs = getattr(new, attr), getattr(original, attr)
        order = [k for k in theirs if k in mine] + [k for k in mine if k not in theirs]
        items = [(k, mine.pop(k)) for k in order]
        mine.update(items)
    for name, child in new.named_children():
        counterpart = original._modules.get(name)
        if counterpart is not None:
            _order_like(counterpart, child)


def _copy_missing_state(module: nn.Module, gm: fx.GraphModule) -> None:
    """Give ``gm`` the parameters and persistent buffers of ``module`` that its graph does not use.

    A GraphModule only copies what its graph reads (a BatchNorm's ``num_batches_tracked`` is read in
    training only, a branch taken in training only is absent in eval); the converted model must keep every
    state-dict entry, so the rest is attached at the same path.
    """
    present = set(gm.state_dict())
    for key, value in module.state_dict(keep_vars=True).items():
        if key in present:
            continue
        *path, attr = key.split(".")
        owner: nn.Module = gm
        for part in path:
            if not hasattr(owner, part):
                owner.add_module(part, nn.Module())
            owner = getattr(owner, part)
        if isinstance(value, nn.Parameter):
            owner.register_parameter(attr, value)
        else:
            owner.register_buffer(attr, value)


# ----------------------------------------------------------------------------------------------------
# Run-time observation: one forward pass on an example input


_STRIDED_POOL_CALLS = {
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "lp_pool1d",
    "lp_pool2d",
    "lp_pool3d",
    "max_pool1d_with_indices",
    "max_pool2d_with_indices",
    "max_pool3d_with_indices",
}
_STRIDED_CONV_CALLS = {"conv1d", "conv2d", "conv3d"}
HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
)


@dataclass
class Observation:
    """What one forward pass on an example input showed.

    Attributes:
        order: qualified module name -> index of its first call (execution order).
        channels: watched module -> the channel counts (``size(1)``) of its first input.
        calls: ``(owner module, call)`` of strided ``F.*`` pooling/convolution calls and of slicing with
            a step (``x[:, ::2]``) made in a ``forward`` (not inside a convolution or pooling module).
        error: why the forward failed (``None``: it ran to the end).
    """

    order: dict[str, int]
    channels: dict[str, set[int]]
    calls: list[tuple[str, str]]
    error: str | None = None


def _stride_of(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if name in _STRIDED_CONV_CALLS:
        return args[3] if len(args) > 3 else kwargs.get("stride", 1)
    # lp_pool's signature puts the norm type first
    offset = 1 if name.startswith("lp_pool") else 0
    stride = args[2 + offset] if len(args) > 2 + offset else kwargs.get("stride")
    if stride is None or (isinstance(stride, (tuple, list)) and not stride):
        stride = args[1 + offset] if len(args) > 1 + offset else kwargs.get("kernel_size")
    return stride


def _strided_value(stride: Any) -> bool:
    values = stride if isinstance(stride, (tuple, list)) else (stride,)
    return any(isinstance(v, int) and v > 1 for v in values)


def strided_call(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> str | None:
    """``"F.<name>(stride=...)"`` for a call of a pooling or convolution function that subsamples
    (``name`` is the function's ``__name__``, the arguments as passed); ``None`` otherwise."""
    if name not in _STRIDED_POOL_CALLS and name not in _STRIDED_CONV_CALLS:
        return None
    stride = _stride_of(name, args, kwargs)
    return f"F.{name}(stride={stride})" if _strided_value(stride) else None


def _step_slices(index: Any) -> list[int]:
    items = index if isinstance(index, tuple) else (index,)
    return [
        i
        for i, item in enumerate(items)
        if isinstance(item, slice) and isinstance(item.step, int) and item.step > 1
    ]


def observe(
    model: nn.Module, inputs: tuple[Any, ...], watch: set[str], leaves: tuple[type[nn.Module], ...]
) -> Observation:
    """Run ``model(*inputs)`` once, without gradients and in evaluation mode, and record what it did.

    Strided calls made by a module of a ``leaves`` type (a convolution calling ``F.conv2d``) are its own
    work, not a hidden subsampling, and are not recorded. Train/eval modes are restored afterwards.
    """
    names = {id(m): n for n, m in model.named_modules()}
    modes = [(m, m.training) for m in model.modules()]
    stack: list[nn.Module] = []
    seen = Observation({}, {}, [])
    found: set[tuple[str, str]] = set()

    def pre_hook(module: nn.Module, args: tuple[Any, ...]) -> None:
        name = names.get(id(module))
        stack.append(module)
        if name is None:
            return
        seen.order.setdefault(name, len(seen.order))
        if name in watch and args and isinstance(args[0], torch.Tensor) and args[0].dim() >= 2:
            seen.channels.setdefault(name, set()).add(int(args[0].size(1)))

    def post_hook(module: nn.Module, args: tuple[Any, ...], output: Any) -> None:
        if stack and stack[-1] is module:
            stack.pop()

    def record(call: str) -> None:
        owner = stack[-1] if stack else model
        if isinstance(owner, leaves):
            return
        key = (names.get(id(owner), "?"), call)
        if key not in found:
            found.add(key)
            seen.calls.append(key)

    class _Mode(torch.overrides.TorchFunctionMode):
        def __torch_function__(
            self, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
        ) -> Any:
            kwargs = kwargs or {}
            name = getattr(func, "__name__", "")
            if (call := strided_call(name, args, kwargs)) is not None:
                record(call)
            elif (
                name == "__getitem__"
                and len(args) == 2
                and isinstance(args[0], torch.Tensor)
                and args[0].dim() >= 3
            ):
                if steps := _step_slices(args[1]):
                    record(f"slicing with a step (index {args[1]!r}, dims {steps})")
            return func(*args, **kwargs)

    from torch.nn.modules import module as module_mod

    handles = [
        module_mod.register_module_forward_pre_hook(pre_hook),
        module_mod.register_module_forward_hook(post_hook),
    ]
    # The model's own hooks must not see this forward: they are set aside until it ends.
    hooks = [
        (m, attr, getattr(m, attr))
        for m in model.modules()
        for attr in HOOK_DICTS
        if getattr(m, attr, None)
    ]
    for module, attr, _ in hooks:
        setattr(module, attr, OrderedDict())
    model.eval()
    try:
        with torch.no_grad(), _Mode():
            model(*inputs)
    except Exception as exc:  # any error in a user's forward: the observation is partial
        message = str(exc).splitlines()[0] if str(exc) else ""
        seen.error = f"{type(exc).__name__}: {message}"[:300]
        logger.debug("example forward failed: %s", exc)
    finally:
        for handle in handles:
            handle.remove()
        for module, attr, value in hooks:
            setattr(module, attr, value)
        for module, mode in modes:
            module.training = mode
    return seen
