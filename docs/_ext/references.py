"""Cross-references that the Python domain leaves unresolved, resolved without the network.

1. A short name in a docstring (``:func:`convert```) resolves to the one documented object of
   ``antialias`` whose full name ends with it, as Sphinx's ``:func:`.convert``` would; a name that
   matches no documented object, or several, stays unresolved, and ``-n -W`` fails the build.
2. Names of torch, torchvision, PIL, numpy and the standard library link to their documentation
   through the table below (intersphinx would download the inventories, which the build must not
   need). A name of those packages that is not in the table stays unresolved: add it here.
3. A private name of antialias in a type hint (a private base class as a return type, a
   ``TypeVar``) is shown as plain text: it has no page to link to. A docstring that names one with a
   role stays unresolved.

A dataclass's signature shows ``field(default_factory=...)`` defaults as ``...`` (Python shows
``<factory>``, which is no expression, and Sphinx would then split the signature at every comma).
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar

from docutils import nodes
from sphinx.addnodes import pending_xref
from sphinx.util.nodes import make_refnode

TORCH = "https://docs.pytorch.org/docs/stable/"
VISION = "https://docs.pytorch.org/vision/stable/"
PYTHON = "https://docs.python.org/3/"
PIL = "https://pillow.readthedocs.io/en/stable/reference/"
NUMPY = "https://numpy.org/doc/stable/reference/"

EXTERNAL: dict[str, str] = {
    "torch.Tensor": TORCH + "tensors.html#torch.Tensor",
    "torch.device": TORCH + "tensor_attributes.html#torch.device",
    "torch.dtype": TORCH + "tensor_attributes.html#torch.dtype",
    "torch.Generator": TORCH + "generated/torch.Generator.html",
    "torch.Size": TORCH + "size.html#torch.Size",
    "torch.save": TORCH + "generated/torch.save.html",
    "torch.load": TORCH + "generated/torch.load.html",
    "torch.nn.Module": TORCH + "generated/torch.nn.Module.html",
    "torch.utils.data.DataLoader": TORCH + "data.html#torch.utils.data.DataLoader",
    "torch.utils.data.Dataset": TORCH + "data.html#torch.utils.data.Dataset",
    "torch.fx.GraphModule": TORCH + "fx.html#torch.fx.GraphModule",
    "torch.nn.Conv1d": TORCH + "generated/torch.nn.Conv1d.html",
    "torch.nn.Conv2d": TORCH + "generated/torch.nn.Conv2d.html",
    "torch.nn.Conv3d": TORCH + "generated/torch.nn.Conv3d.html",
    "torch.nn.Linear": TORCH + "generated/torch.nn.Linear.html",
    "torchvision.models.AlexNet": VISION + "models/alexnet.html",
    "torchvision.models.VGG": VISION + "models/vgg.html",
    "torchvision.models.ResNet": VISION + "models/resnet.html",
    "torchvision.models.DenseNet": VISION + "models/densenet.html",
    "torchvision.models.MobileNetV2": VISION + "models/mobilenetv2.html",
    "torchvision.datasets.CIFAR10": VISION + "generated/torchvision.datasets.CIFAR10.html",
    "PIL.Image.Image": PIL + "Image.html#PIL.Image.Image",
    "numpy.ndarray": NUMPY + "generated/numpy.ndarray.html",
    "typing_extensions.Unpack": PYTHON + "library/typing.html#typing.Unpack",
    "pathlib.Path": PYTHON + "library/pathlib.html#pathlib.Path",
    "os.PathLike": PYTHON + "library/os.html#os.PathLike",
    "collections.abc.Callable": PYTHON + "library/collections.abc.html#collections.abc.Callable",
    "collections.abc.Iterable": PYTHON + "library/collections.abc.html#collections.abc.Iterable",
    "collections.abc.Iterator": PYTHON + "library/collections.abc.html#collections.abc.Iterator",
    "collections.abc.Sequence": PYTHON + "library/collections.abc.html#collections.abc.Sequence",
    "collections.abc.Mapping": PYTHON + "library/collections.abc.html#collections.abc.Mapping",
    "typing.Any": PYTHON + "library/typing.html#typing.Any",
    "enum.Enum": PYTHON + "library/enum.html#enum.Enum",
    "logging.Logger": PYTHON + "library/logging.html#logging.Logger",
}
# The spellings that annotations and docstrings use for the names above.
ALIASES: dict[str, str] = {
    "Tensor": "torch.Tensor",
    "nn.Module": "torch.nn.Module",
    "torch.nn.modules.module.Module": "torch.nn.Module",
    "torch.nn.modules.conv.Conv1d": "torch.nn.Conv1d",
    "torch.nn.modules.conv.Conv2d": "torch.nn.Conv2d",
    "torch.nn.modules.conv.Conv3d": "torch.nn.Conv3d",
    "torch.nn.modules.linear.Linear": "torch.nn.Linear",
    "nn.Linear": "torch.nn.Linear",
    "torch._C.Generator": "torch.Generator",
    "torch.utils.data.dataset.Dataset": "torch.utils.data.Dataset",
    "AlexNet": "torchvision.models.AlexNet",
    "VGG": "torchvision.models.VGG",
    "ResNet": "torchvision.models.ResNet",
    "DenseNet": "torchvision.models.DenseNet",
    "MobileNetV2": "torchvision.models.MobileNetV2",
    "CIFAR10": "torchvision.datasets.CIFAR10",
    "Path": "pathlib.Path",
    "Callable": "collections.abc.Callable",
    "Iterable": "collections.abc.Iterable",
    "Iterator": "collections.abc.Iterator",
    "Sequence": "collections.abc.Sequence",
    "Mapping": "collections.abc.Mapping",
    "Any": "typing.Any",
}


def _external(target: str) -> str | None:
    target = ALIASES.get(target, target)
    return EXTERNAL.get(target)


def _private(target: str) -> bool:
    """A private name of antialias (a component starting with ``_``) or one of its type variables."""
    parts = target.split(".")
    if parts[0] != "antialias":
        return False
    if any(part.startswith("_") for part in parts[1:]):
        return True
    for split in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        for part in parts[split:]:
            obj = getattr(obj, part, None)
        return isinstance(obj, TypeVar)
    return False


def _ours(env: Any, node: pending_xref) -> tuple[str, str] | None:
    """The (full name, object type) of the one documented object that ``node`` names by suffix.

    Objects of the role's types first (``:meth:`` a method); then of any type (``:meth:`` a field
    that holds a function).
    """
    target = node["reftarget"].lstrip(".~")
    domain = env.get_domain("py")
    named = [
        (name, obj.objtype)
        for name, obj in domain.objects.items()
        if (name == target or name.endswith("." + target)) and not obj.aliased
    ]
    objtypes = domain.objtypes_for_role(node["reftype"]) or []
    for found in ({m for m in named if m[1] in objtypes}, set(named)):
        if found:
            return found.pop() if len(found) == 1 else None
    return None


def _missing_reference(
    app: Any, env: Any, node: pending_xref, contnode: nodes.TextElement
) -> nodes.reference | None:
    if node.get("refdomain") != "py":
        return None
    url = _external(node["reftarget"])
    if url is not None:
        return nodes.reference("", "", contnode, refuri=url, internal=False)
    annotation = "refexplicit" not in node  # a role in a docstring sets it, a type hint does not
    if annotation and _private(node["reftarget"]):
        return contnode
    match = _ours(env, node)
    if match is None:
        return None
    name = match[0]
    obj = env.get_domain("py").objects[name]
    return make_refnode(app.builder, node["refdoc"], obj.docname, obj.node_id, contnode, name)


def _signature(
    app: Any, what: str, name: str, obj: Any, options: Any, signature: str | None, ret: str | None
) -> tuple[str | None, str | None] | None:
    if signature and "<factory>" in signature:
        return signature.replace("<factory>", "..."), ret
    return None


def setup(app: Any) -> dict[str, Any]:
    app.connect("missing-reference", _missing_reference)
    app.connect("autodoc-process-signature", _signature)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
