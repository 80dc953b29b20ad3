"""The one model resolver of ``antialias train`` and ``antialias eval``: a ``--model`` string (and its
weights) to a model, and pretrained weights to start training from.

A model comes from one of four sources (see :data:`SOURCES`):

* ``"zoo"``: an anti-aliased model of ``antialias.models`` (``get_model(name, filter_size=...)``);
* ``"convert"``: a torchvision architecture passed through ``antialias.convert`` (any torchvision
  classifier, including those the zoo does not have);
* ``"torchvision"``: the torchvision architecture unchanged (the baseline);
* a factory ``"package.module:function"`` (or ``"file.py:function"``, see :func:`import_object`) called
  as ``function(num_classes=...)`` (your own network).
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.util
import inspect
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from antialias.models._load import (
    _URL_SCHEMES,
    load_weights,
    torchvision_weights_through_loader,
    weights_num_classes,
)

__all__ = [
    "SOURCES",
    "build_model",
    "import_object",
    "load_init_weights",
    "takes_argument",
    "torchvision_names",
]

logger = logging.getLogger(__name__)

SOURCES = ("zoo", "convert", "torchvision")
"""Where a model name is looked up; a ``module:function`` name is a factory whatever the source."""


def _close(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _given(**kwargs: Any) -> dict[str, Any]:
    """The keyword arguments that are not ``None`` (the builder's defaults stand for the others)."""
    return {k: v for k, v in kwargs.items() if v is not None}


def torchvision_names() -> list[str]:
    """torchvision's classification model names (``torchvision.models.list_models``), sorted."""
    import torchvision

    return sorted(torchvision.models.list_models(module=torchvision.models))


def _torchvision_model(name: str, num_classes: int | None, weights: Any = None) -> nn.Module:
    import torchvision

    names = torchvision_names()
    if name not in names:
        raise ValueError(
            f"unknown torchvision classification model {name!r}{_close(name, names)} "
            f"(torchvision.models.list_models() lists {len(names)})"
        )
    # Named weights come with their classifier.
    num_classes = num_classes if weights is None else None
    with _safe_downloads(weights):
        return torchvision.models.get_model(
            name, weights=weights, **_given(num_classes=num_classes)
        )


def _safe_downloads(weights: Any) -> contextlib.AbstractContextManager:
    """With weights named: torchvision's own download goes through the zoo's safe loader (hash checked, one-line errors)."""
    return contextlib.nullcontext() if weights is None else torchvision_weights_through_loader()


@contextlib.contextmanager
def _import_path(append: str | None = None) -> Iterator[None]:
    """``sys.path`` while a model's module is imported: installed modules (and ``PYTHONPATH``) only, then ``append``.

    ``python -m`` and an interactive interpreter put the working directory (``""`` or its path) first
    on ``sys.path``: it is hidden, so a ``torchvision.py`` lying there cannot replace torchvision. A
    file's folder is appended, not prepended: its siblings can be imported, never in place of an
    installed module.
    """
    cwd = os.path.realpath(os.getcwd())
    hidden = [
        (i, p) for i, p in enumerate(sys.path) if p in ("", ".") or os.path.realpath(p) == cwd
    ]
    for i, _ in reversed(hidden):
        del sys.path[i]
    added = append if append is not None and append not in sys.path else None
    if added is not None:
        sys.path.append(added)
    try:
        yield
    finally:  # only what was changed here is undone: what the module adds to sys.path stays
        if added is not None and added in sys.path:
            sys.path.remove(added)
        for i, p in hidden:
            sys.path.insert(i, p)


def import_object(spec: str) -> Any:
    """The object that ``"package.module:name"`` or ``"path/file.py:name"`` names (``name`` may be dotted).

    A module name is imported only from installed modules (and ``PYTHONPATH``), never from the
    working directory by accident; a file is imported only when its path is given
    (``./mynet.py:build``; its folder is appended to ``sys.path`` while it is imported, so it can
    import its siblings). This is how ``antialias train --model`` and ``antialias eval --model``
    find a user's model factory.

    Raises:
        ValueError: ``spec`` is malformed, its module cannot be imported or lacks the attribute (the
            message names ``spec``).
    """
    target, _, attr = spec.rpartition(":")
    if not target or not attr:
        raise ValueError(
            f"model {spec!r}: expected 'module:function' or 'path/to/file.py:function'"
        )
    try:
        if target.endswith(".py"):
            path = Path(target).expanduser()
            if not path.is_file():
                raise ValueError(f"model {spec!r}: file {target!r} does not exist")
            module_spec = importlib.util.spec_from_file_location(path.stem, path)
            if module_spec is None or module_spec.loader is None:
                raise ValueError(f"model {spec!r}: cannot import {target!r}")
            module = importlib.util.module_from_spec(module_spec)
            with _import_path(append=str(path.resolve().parent)):
                module_spec.loader.exec_module(module)
        else:
            with _import_path():
                module = importlib.import_module(target)
    except ImportError as exc:
        local = Path(*target.split(".")).with_suffix(".py")
        hint = (
            f"; {str(local)!r} in the working directory is not imported by name (it could shadow an installed "
            f"module): give its path, './{local.as_posix()}:{attr}'"
            if local.is_file()
            else ""
        )
        raise ValueError(f"model {spec!r}: cannot import {target!r} ({exc}){hint}") from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(
                f"model {spec!r}: {target!r} has no attribute {attr!r} (no callable {attr!r} that "
                "builds the model)"
            )
        obj = getattr(obj, part)
    return obj


def takes_argument(function: Any, name: str) -> bool:
    """Whether ``function`` accepts the keyword argument ``name`` (or any, with ``**kwargs``)."""
    try:
        params = inspect.signature(function).parameters
    except (TypeError, ValueError):
        return False
    return name in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


def _factory_model(spec: str, num_classes: int | None, weights: Any = None) -> nn.Module:
    factory = import_object(spec)
    if isinstance(factory, nn.Module):
        if weights is not None or num_classes is not None:
            raise ValueError(
                f"model {spec!r} is a module instance: it takes no weights name or num_classes "
                "(give a weights file)"
            )
        return factory
    if not callable(factory):
        raise ValueError(f"model factory {spec!r} is not a function, got {type(factory).__name__}")
    if num_classes is not None and not takes_argument(factory, "num_classes"):
        raise ValueError(f"model factory {spec!r} takes no num_classes= argument")
    try:
        inspect.signature(factory).bind(**_given(num_classes=num_classes))
    except TypeError as exc:  # os:system, a class that needs arguments ...
        raise ValueError(f"model {spec!r} is not a model builder: {exc}") from None
    except ValueError:  # no signature to read (some built-ins): the call decides
        pass
    try:
        with _safe_downloads(weights):
            model = factory(**_given(num_classes=num_classes, weights=weights))
    except TypeError as exc:
        if weights is None:
            raise
        raise ValueError(
            f"model {spec!r} takes no weights={weights!r} ({exc}); give a weights file"
        ) from exc
    if not isinstance(model, nn.Module):
        raise TypeError(f"model factory {spec!r} returned {type(model).__name__}, not an nn.Module")
    return model


def _zoo_model(
    name: str, num_classes: int | None, filter_size: Any, weights: Any = None
) -> nn.Module:
    from antialias.models._registry import get_model, list_models

    names = list(list_models())
    if name not in names:
        hint = _close(name, names)
        if name in torchvision_names():
            hint += " (it is a torchvision model: pass --convert to anti-alias it, --baseline to train it as is)"
        raise ValueError(
            f"unknown zoo model {name!r}{hint}; antialias.models.list_models() lists the zoo"
        )
    return get_model(
        name, weights=weights, **_given(filter_size=filter_size, num_classes=num_classes)
    )


_MODEL_FILE_SUFFIXES = (".pt", ".pt2", ".pth", ".ts", ".jit")


def _is_model_file(spec: str) -> bool:
    """Whether ``spec`` names a saved model file rather than a model name.

    A registered zoo or torchvision name is a name even when a file of that name lies in the working
    directory (write ``./resnet18`` for the file); anything else that exists as a file is a file.
    """
    if not os.path.isfile(spec):
        return False
    if os.sep in spec or "/" in spec or spec.endswith(_MODEL_FILE_SUFFIXES):
        return True
    from antialias.models._registry import list_models

    if spec in list_models() or spec in torchvision_names():
        logger.warning(
            f"model {spec!r} is a model name; the file {spec!r} in the working directory is ignored "
            f"(write ./{spec} to use the file)"
        )
        return False
    return True


class _ExportedModel(nn.Module):
    """An exported program's module (``ExportedProgram.module()``), which cannot switch between
    training and eval mode: it is in eval mode, its training-mode batch norm and dropout switched
    to eval mode at load; ``eval()`` is accepted and ``train()`` refused (it cannot be trained)."""

    def __init__(self, module: nn.Module, path: str) -> None:
        super().__init__()
        self.module = module
        self.path = path
        self.training = False

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.module(*args, **kwargs)

    def train(self, mode: bool = True) -> _ExportedModel:
        if mode:
            raise ValueError(
                f"model file {self.path!r} is an exported program (.pt2): it runs as exported and "
                "cannot be trained; give its architecture as the model and its weights as a file"
            )
        return self


# aten operators an exported program runs in training mode, with the index of their mode argument.
_TRAINING_ARGS = {
    "aten.batch_norm.default": 5,
    "aten.dropout.default": 2,
    "aten.feature_dropout.default": 2,
    "aten.alpha_dropout.default": 2,
    "aten.feature_alpha_dropout.default": 2,
}
_TRAINING_ONLY = (
    "_native_batch_norm_legit_functional",
    "native_dropout",
    "_native_batch_norm_legit.",
)


def _exported_model(path: str) -> nn.Module:
    from antialias import _io

    # Never torch.export.load directly: it unpickles parts of the file with weights_only=False.
    module = _io.load_exported_program(path).module()
    changed = False
    for node in module.graph.nodes:
        if node.op != "call_function":
            continue
        name = str(node.target)
        index = _TRAINING_ARGS.get(name)
        if index is not None and len(node.args) > index and node.args[index] is True:
            node.args = (*node.args[:index], False, *node.args[index + 1 :])
            changed = True
        elif any(part in name for part in _TRAINING_ONLY):
            raise ValueError(
                f"model file {path!r} was exported in training mode ({name} cannot run in eval mode); "
                "export the model after model.eval() and pass that .pt2"
            )
    if changed:
        module.recompile()
        logger.warning(
            f"model file {path!r} was exported in training mode: its batch norm and dropout run in "
            "eval mode here"
        )
    return _ExportedModel(module, path)


def _saved_model(path: str) -> nn.Module:
    if path.endswith(".pt2"):
        return _exported_model(path)
    try:
        with warnings.catch_warnings():
            # torch deprecates TorchScript; loading a user's saved model is still what was asked.
            warnings.filterwarnings("ignore", message=".*torch.jit.load.*", category=FutureWarning)
            return torch.jit.load(path, map_location="cpu")
    except Exception as exc:  # TorchScript raises RuntimeError or its own types
        raise ValueError(
            f"model file {path!r} is not a TorchScript file (torch.jit.save); for a checkpoint, "
            "name the architecture as the model and give the file as its weights"
        ) from exc


def build_model(
    name: str,
    *,
    num_classes: int | None = None,
    filter_size: Any = None,
    source: str = "auto",
    weights: Any = None,
) -> nn.Module:
    """Build a model from its name and load its weights: the one resolver of ``antialias train`` and ``antialias eval``.

    Args:
        name: a zoo name, a torchvision name, ``"package.module:function"`` (a factory, called with
            ``num_classes=`` and ``weights=`` when they are given, or a module instance), or, with
            ``source="auto"``, a saved model file (TorchScript, or ``torch.export``'s ``.pt2``).
        num_classes: size of the classifier's output; ``None``: what a weights file says (its
            description, else its classifier's shape), else the builder's default (1000).
        filter_size: blur filter of the anti-aliased models (``"zoo"`` and ``"convert"``); an int
            1..7 or a family string such as ``"box-3"`` (see ``antialias.filters``); ``None``: the
            zoo's default (the weights' filter, else 4).
        source: ``"zoo"``, ``"convert"``, ``"torchvision"`` (see the module's docstring) or
            ``"auto"``: a saved model file, else a zoo name, else a torchvision name.
        weights: a weights file, or a name the builder's ``weights=`` takes (the zoo's catalog
            names, torchvision's weights names such as ``"DEFAULT"``). The zoo reads a file itself
            (the reference's key layout too); any other model is built for the file's class count
            and loads it strictly. ``None`` or ``"none"``: random initialisation.

    Raises:
        ValueError: unknown name or source (the message suggests close names), a file that is no
            saved model, weights that do not fit (names, shapes, or a ``num_classes`` that differs
            from the file's).

    >>> build_model("resnet18", num_classes=10, source="torchvision").fc.out_features
    10
    """
    if source not in (*SOURCES, "auto"):
        raise ValueError(f"model source must be one of {(*SOURCES, 'auto')}, got {source!r}")
    if num_classes is not None and (not isinstance(num_classes, int) or num_classes < 1):
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if isinstance(weights, str) and weights.lower() == "none":
        weights = None
    weights_file = (  # a file or a URL (downloaded, hash-checked): read by the zoo's loader
        os.fspath(weights)
        if isinstance(weights, (str, os.PathLike))
        and (os.path.isfile(weights) or os.fspath(weights).startswith(_URL_SCHEMES))
        else None
    )
    if weights_file is not None and num_classes is not None:
        saved = weights_num_classes(weights_file)
        if saved is not None and saved != num_classes:
            raise ValueError(
                f"num_classes {num_classes} but weights {weights_file!r} have {saved} classes; give num_classes=None "
                "to use the file's (load_init_weights(..., new_classifier=True) starts a new classifier)"
            )
    if source == "auto" and _is_model_file(name):
        if weights is not None and weights_file is None:
            raise ValueError(f"weights {weights!r} for the saved model {name!r} must be a file")
        model = _saved_model(name)
    elif ":" in name:
        if weights_file is not None and num_classes is None:
            with contextlib.suppress(ValueError):
                factory = import_object(name)
                if not isinstance(factory, nn.Module) and takes_argument(factory, "num_classes"):
                    num_classes = weights_num_classes(weights_file)
        model = _factory_model(name, num_classes, None if weights_file else weights)
    else:
        if source == "auto":
            from antialias.models._registry import list_models

            if name in list_models():
                source = "zoo"
            elif name in torchvision_names():
                source = "torchvision"
            else:
                raise ValueError(
                    f"unknown model {name!r}{_close(name, list(list_models()) + torchvision_names())}: not a zoo or "
                    "torchvision model name, a 'module:function' or an existing TorchScript file"
                )
        if source == "zoo":
            return _zoo_model(name, num_classes, filter_size, weights)  # the zoo reads files itself
        if weights_file is not None and num_classes is None:
            num_classes = weights_num_classes(weights_file)
        model = _torchvision_model(name, num_classes, None if weights_file else weights)
        if source == "convert":
            from antialias.conversion import convert

            model = convert(model, filter_size=4 if filter_size is None else filter_size)
    return load_weights(model, weights_file, source=f"weights {weights_file!r}")


def _init_weights(spec: str, arch: str) -> tuple[str, str]:
    """``spec`` (a file, or ``torchvision[:WEIGHTS]``) as what :func:`load_weights` reads and a description."""
    if spec == "torchvision" or spec.startswith("torchvision:"):
        import torchvision

        if ":" in arch:
            raise ValueError(f"init weights {spec!r} need a torchvision architecture, not {arch!r}")
        try:
            enum = torchvision.models.get_model_weights(arch)
        except (ValueError, KeyError) as exc:
            raise ValueError(f"torchvision has no weights for {arch!r}: {exc}") from None
        member = spec.partition(":")[2] or "DEFAULT"
        try:
            weights = enum[member]
        except KeyError:
            names = [m for m in enum.__members__ if m != "DEFAULT"]
            raise ValueError(
                f"torchvision has no weights {member!r} for {arch!r}; expected DEFAULT or one of {names}"
            ) from None
        # Its URL, through the zoo's loader: hash-checked, weights_only, a one-line error offline.
        return weights.url, f"torchvision {enum.__name__}.{member}"
    if not os.path.isfile(spec):
        raise FileNotFoundError(
            f"init weights {spec!r} is not a file; expected a state-dict file or 'torchvision[:NAME]'"
        )
    return spec, spec


def load_init_weights(
    model: nn.Module, spec: str, *, arch: str, new_classifier: bool = False
) -> str:
    """Load pretrained weights into ``model``: every name and shape must match (with
    ``new_classifier``, except a classifier trained for another number of classes).

    The zoo keeps torchvision's parameter names, so torchvision's baseline weights load as they are
    (fine-tuning, ``antialias train --init-weights``).

    Args:
        model: the freshly built model.
        spec: a file holding a state dict (plain, ``{'state_dict': ...}`` or ``{'model': ...}``), or
            ``"torchvision"`` / ``"torchvision:IMAGENET1K_V1"`` for torchvision's weights of ``arch``
            (downloaded).
        arch: the model's name (for torchvision weights and messages).
        new_classifier: a classifier (the model's last ``nn.Linear``) trained for another class count
            keeps its fresh initialisation, with a message naming it; every other key loads strictly.

    Returns:
        A description of the weights loaded.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the file is unreadable, holds NaN or Inf, or names or shapes do not match (the
            message names the file and lists the keys).
    """
    weights, described = _init_weights(spec, arch)
    source = f"init weights {described!r} for {arch!r}"
    load_weights(model, weights, progress=False, new_classifier=new_classifier, source=source)
    logger.info(f"loaded init weights {described} into {arch} (strict)")
    return described
