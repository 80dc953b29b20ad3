"""The one loading path of the zoo: catalog weights, files, URLs and state dicts into a model.

``weights=`` of every builder accepts

- a catalog entry (``ResNet50_Weights.DEFAULT``) or its name (``"DEFAULT"``, ``"LPF4_FINETUNE"``,
  ``"ResNet50_Weights.LPF2"``): downloaded into torch.hub's cache (``<hub dir>/checkpoints``) and
  checked against the SHA-256 prefix in its file name;
- a URL (``http://``, ``https://``, ``file://``): when the file name follows torch.hub's
  ``<name>-<sha256 prefix>.pth`` convention it is cached there too and the prefix is checked; any
  other file is cached under the hash of its URL (see :func:`cache_path`). A download goes to a
  temporary name and is renamed only after the hash check; a refused or partial file is deleted;
- a local file path (a ``.safetensors`` file is read with safetensors);
- a state dict (a mapping of names to tensors), or a dict holding one under ``'state_dict'``/``'model'``/
  ``'model_state_dict'``.

Files are read by :func:`antialias._io.safe_torch_load`: zip CRCs (and a SHA-256 recorded beside the
file) are checked, then ``torch.load(weights_only=True)``: a file that would run code when unpickled is
refused, never run. Both of torch's serialization formats (zip and the legacy one) are read.
torchvision's weights go through the same loader (:func:`torchvision_weights_through_loader`).

Checkpoints may use torchvision's key names (ours) or the reference's layout (its official files,
``{'state_dict': ...}`` with ``*.filt`` buffers and blur layers spliced into ``nn.Sequential``s):
:func:`remap_reference_state_dict` translates the latter, then the state dict is loaded strictly, with
an error that lists the missing, unexpected and mis-shaped keys.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Union

import torch
from torch import Tensor, nn

from antialias._io import CheckpointError, safe_torch_load, sha256_file, verify_file
from antialias.filters import FilterSpec, filter_name, get_taps
from antialias.models._head import (
    MODEL_META_KEY,
    replace_classifier_weights,
    state_dict_num_classes,
)
from antialias.models._reference import (
    check_filters,
    infer_filter_size,
    remap_reference_state_dict,
)
from antialias.models._weights import _HASH_RE, MIRROR_ENV, WeightsEnum

__all__ = [
    "CheckpointError",
    "build_with_weights",
    "check_filter",
    "read_model_meta",
    "weights_num_classes",
    "cache_path",
    "WeightsArg",
    "WeightsDownloadError",
    "extract_state_dict",
    "load_state_dict",
    "load_weights",
    "read_state_dict",
    "read_torchvision_state_dict",
    "resolve_weights",
    "state_dict_mismatch",
    "torchvision_weights_through_loader",
]

logger = logging.getLogger(__name__)

WeightsArg = Union[WeightsEnum, str, "os.PathLike[str]", Mapping[str, Tensor], None]

_URL_SCHEMES = ("http://", "https://", "file://")


class WeightsDownloadError(ConnectionError, ValueError):
    """Weights could not be downloaded (no network, HTTP error). Also a ``ValueError``, so command
    lines report it as a one-line user error."""


def extract_state_dict(obj: Any, *, source: str = "the checkpoint") -> dict[str, Tensor]:
    """Return the model state dict held by ``obj``.

    Accepts a plain state dict, ``{'state_dict': ...}`` (the reference's and the zoo's format), ``{'model': ...}``
    (torchvision's references and ``antialias train``'s checkpoints) and ``{'model_state_dict': ...}``, and
    removes the ``module.`` (DataParallel / DDP) and ``_orig_mod.`` (torch.compile) prefixes when every key
    carries them.

    Raises:
        CheckpointError: no state dict of tensors could be found (the message names ``source``).
    """
    if isinstance(obj, Mapping):
        for key in ("state_dict", "model", "model_state_dict"):
            if isinstance(obj.get(key), Mapping):
                obj = obj[key]
                break
    if (
        not isinstance(obj, Mapping)
        or not obj
        or not all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())
    ):
        raise CheckpointError(
            f"{source} holds no state dict: expected a mapping of names to tensors, or a dict with one "
            "under 'state_dict' (the reference's format), 'model' or 'model_state_dict'"
        )
    state = dict(obj)
    for prefix in ("module.", "_orig_mod."):  # DataParallel / DDP and torch.compile wrappers
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix) :]: v for k, v in state.items()}
    return state


_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]*$")


def _url_file_name(url: str) -> str:
    name = url.split("?", 1)[0].split("#", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    if not _FILE_NAME_RE.match(name) or name in (".", ".."):
        raise ValueError(
            f"weights URL {url!r} does not end in a file name (got {name!r}); expected e.g. "
            "https://host/path/model-<sha256 prefix>.pth"
        )
    return name


def cache_path(url: str) -> Path:
    """Where the download of ``url`` is kept.

    A file whose name carries its SHA-256 prefix (torch.hub's ``<name>-<hash>.pth`` convention, which
    every catalog entry and torchvision's weights follow) is kept under that name in torch.hub's cache
    (``<hub dir>/checkpoints``), shared with torch.hub and torchvision, and its hash is checked on
    every use. Any other file is kept under a folder named by the hash of its URL
    (``<hub dir>/antialias/by-url/<sha256(url)[:16]>/<name>``): two URLs never share a cached file.
    """
    name = _url_file_name(url)
    hub = Path(torch.hub.get_dir())
    if _url_hash_prefix(url) is not None:
        return hub / "checkpoints" / name
    key = hashlib.sha256(url.encode("utf-8")).hexdigest()[:16]
    return hub / "antialias" / "by-url" / key / name


def _fetch(url: str, target: Path, *, hash_prefix: str | None, progress: bool) -> None:
    """Download ``url`` into ``target`` with torch.hub's download: a temporary file beside it, the
    SHA-256 prefix checked, then renamed; a refused or partial file is deleted."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        torch.hub.download_url_to_file(url, str(target), hash_prefix=hash_prefix, progress=progress)
    except RuntimeError as exc:  # torch.hub's hash refusal: 'invalid hash value (expected ...)'
        if hash_prefix is None or "invalid hash value" not in str(exc):
            raise
        raise CheckpointError(
            f"the file downloaded from {url} is not the expected one: its SHA-256 does not start "
            f"with {hash_prefix!r} ({exc}); it was deleted, not cached"
        ) from None


def _download(url: str, *, hash_prefix: str | None, progress: bool) -> Path:
    """The cached download of ``url`` (see :func:`cache_path`), fetched when missing; hash-checked either way.

    A cached file that fails its hash check is deleted (a plain torch.hub call would otherwise use
    it) and downloaded again.
    """
    if not url.startswith(_URL_SCHEMES):
        raise ValueError(f"weights URL {url!r} must start with one of {', '.join(_URL_SCHEMES)}")
    cached = cache_path(url)
    if cached.is_file() and hash_prefix is not None:
        digest = sha256_file(cached)
        if not digest.startswith(hash_prefix):
            logger.warning(
                f"deleting {cached}: its SHA-256 {digest[:16]}... does not start with {hash_prefix!r}, so it is not "
                f"the file of {url}"
            )
            cached.unlink(missing_ok=True)
    if not cached.is_file():
        logger.info(f"downloading {url} to {cached}")
        try:
            _fetch(url, cached, hash_prefix=hash_prefix, progress=progress)
        # URLError, ConnectionError and TimeoutError are OSErrors.
        except (http.client.HTTPException, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            mirror = MIRROR_ENV not in os.environ
            hint = f" (or set {MIRROR_ENV} to a mirror of the weights)" if mirror else ""
            raise WeightsDownloadError(
                f"cannot download {url}: {reason}. Without network access, download the file elsewhere and put it "
                f"at {cached}{hint}"
            ) from None
    return cached


def _url_hash_prefix(url: str) -> str | None:
    match = _HASH_RE.search(url.split("?", 1)[0])
    return match.group(1) if match else None


def read_state_dict(
    source: WeightsArg, *, progress: bool = True, hash_prefix: str | None = None
) -> dict[str, Tensor]:
    """Read a state dict from a catalog entry, a URL, a local file or a mapping (see the module docstring).

    The result keeps the checkpoint's key names (the reference's layout is translated later, by
    :func:`remap_reference_state_dict`). A catalog entry given by name needs its enum: pass the member.

    Raises:
        CheckpointError: refused (code on unpickling), truncated/corrupt file, hash mismatch, no state dict.
        WeightsDownloadError: a download failed; the message names the URL and where to put the file.
        FileNotFoundError: a path that does not exist.
    """
    if isinstance(source, WeightsEnum):
        return read_state_dict(
            source.value.download_url, progress=progress, hash_prefix=source.value.sha256_prefix
        )
    if isinstance(source, Mapping):
        return extract_state_dict(source, source="the state dict given as weights")
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.startswith(_URL_SCHEMES):
            path = _download(
                text, hash_prefix=hash_prefix or _url_hash_prefix(text), progress=progress
            )
        else:
            path = Path(text).expanduser()
            if path.is_dir():
                raise CheckpointError(
                    f"weights {text!r} is a folder; expected a file of weights (a state dict)"
                )
            if not path.is_file():
                raise FileNotFoundError(
                    f"weights file {text!r} does not exist (expected a file of weights)"
                )
        if path.name.endswith(".safetensors"):
            return extract_state_dict(_read_safetensors(path), source=f"{str(path)!r}")
        # The one safe reader (antialias._io): integrity (zip CRCs, recorded SHA-256), then weights_only;
        # zip files are memory-mapped, so the tensors are not held twice in memory while they load.
        return extract_state_dict(safe_torch_load(path, what="weights"), source=f"{str(path)!r}")
    raise TypeError(
        f"weights must be a weights enum member or name, a path, a URL or a state dict, got {type(source).__name__}"
    )


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    # safetensors (timm's and Hugging Face's format) holds tensors and a JSON header only: no code.
    try:
        from safetensors.torch import load_file
    except ImportError as exc:
        raise ImportError(
            f"reading {str(path)!r} needs the safetensors package: pip install safetensors"
        ) from exc
    # Integrity first, as for every format: the recorded SHA-256, then the header's structure.
    verify_file(path, what="weights")
    try:
        return load_file(str(path), device="cpu")
    except Exception as exc:  # safetensors raises its own error type for damaged files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(
            f"cannot read weights {str(path)!r}: damaged or not a safetensors file ({first})"
        ) from None


def read_torchvision_state_dict(url: str, *, progress: bool = True) -> dict[str, Tensor]:
    """torchvision's weights at ``url``, read as :func:`read_state_dict` reads a URL: cached in torch.hub's
    cache, the SHA-256 prefix in the file name checked, ``weights_only``, a one-line error offline."""
    return read_state_dict(url, progress=progress)


@contextlib.contextmanager
def torchvision_weights_through_loader(progress: bool = True) -> Iterator[None]:
    """Within the block, torchvision's builders fetch their weights through :func:`read_torchvision_state_dict`.

    Every torchvision builder given ``weights=`` calls ``weights.get_state_dict()``, which calls
    ``torch.hub.load_state_dict_from_url`` (without ``weights_only`` on older torch, and trusting any
    file found in the hub cache). Routing it here gives torchvision's weights the same hash check,
    safe reading and one-line offline error as the zoo's, with torchvision's own model-building
    logic (class count, ``transform_input``...) untouched.
    """
    import torchvision.models._api as tv_api

    original = tv_api.load_state_dict_from_url

    def load(url: str, *args: Any, **kwargs: Any) -> dict[str, Tensor]:
        return read_torchvision_state_dict(url, progress=bool(kwargs.get("progress", progress)))

    # torch.hub's loader checks the hash only when it downloads, not a file already in its cache,
    # where README's Safety section promises a check on every use.
    tv_api.load_state_dict_from_url = load
    try:
        yield
    finally:
        tv_api.load_state_dict_from_url = original


def _fmt(keys: list[str], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def state_dict_mismatch(
    target: Mapping[str, Tensor], state_dict: Mapping[str, Tensor]
) -> tuple[list[str], list[str], list[tuple[str, tuple[int, ...], tuple[int, ...]]]]:
    """What keeps ``state_dict`` from loading strictly into a model whose state dict is ``target``.

    Returns:
        The keys of ``target`` that ``state_dict`` lacks, the keys of ``state_dict`` that ``target`` lacks,
        and ``(key, checkpoint shape, model shape)`` for every shared key whose shapes differ; all empty
        when the load would succeed.
    """
    missing = [k for k in target if k not in state_dict]
    unexpected = [k for k in state_dict if k not in target]
    shapes = [
        (k, tuple(state_dict[k].shape), tuple(v.shape))
        for k, v in target.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    return missing, unexpected, shapes


def load_state_dict(
    model: nn.Module,
    state_dict: Mapping[str, Tensor],
    *,
    source: str = "the checkpoint",
    arch: str | None = None,
) -> nn.Module:
    """Load ``state_dict`` (our or the reference's layout) into ``model`` strictly; return ``model``.

    Raises:
        CheckpointError: the checkpoint's filter differs from the model's, or keys / shapes differ
            (the message lists the missing and unexpected keys and the mis-shaped ones).
    """
    check_filters(state_dict, model, source)
    state = remap_reference_state_dict(state_dict, model)
    missing, unexpected, mismatched = state_dict_mismatch(model.state_dict(), state)
    if missing or unexpected or mismatched:
        what = f"the {arch} model" if arch else f"the {type(model).__name__} model"
        head = f"{source} does not fit {what} (a different architecture, num_classes or layout?):"
        lines = []
        if missing:
            lines.append(f"{len(missing)} missing keys: {_fmt(missing)}")
        if unexpected:
            lines.append(f"{len(unexpected)} unexpected keys: {_fmt(unexpected)}")
        if mismatched:
            shapes = [
                f"{k}: checkpoint {saved} vs model {wanted}" for k, saved, wanted in mismatched
            ]
            lines.append(f"{len(shapes)} shape mismatches: {_fmt(shapes)}")
        raise CheckpointError(head + " " + "; ".join(lines))
    model.load_state_dict(state, strict=True)
    return model


def resolve_weights(weights: WeightsArg, arch: str | None) -> WeightsArg:
    """Turn a catalog name into its enum member (checking that members belong to ``arch``); other forms pass.

    Raises:
        FileNotFoundError: a string that is neither a URL, an existing file, nor a weights name of ``arch``.
        ValueError: a member of another architecture's enum.
    """
    from antialias.models._weights import get_model_weights

    enum = None
    if arch is not None:
        with contextlib.suppress(ValueError):
            enum = get_model_weights(arch)
    if isinstance(weights, WeightsEnum):
        return enum.verify(weights) if enum is not None else weights
    if (
        isinstance(weights, str)
        and not weights.startswith(_URL_SCHEMES)
        and not os.path.exists(weights)
    ):
        if enum is not None:
            with contextlib.suppress(ValueError):
                return enum.verify(weights)
        names = (
            f"a weights name of {arch} ({', '.join(enum.__members__)})"
            if enum is not None
            else "a weights name"
        )
        raise FileNotFoundError(
            f"weights {weights!r} is neither an existing file, a URL, nor {names}"
        )
    return weights


def describe_weights(weights: WeightsArg) -> str:
    """A short description of a ``weights=`` value for messages."""
    if isinstance(weights, WeightsEnum):
        return f"weights {weights!r}"
    if isinstance(weights, Mapping):
        return "the state dict given as weights"
    return (
        f"weights {os.fspath(weights)!r}"
        if isinstance(weights, (str, os.PathLike))
        else f"weights {type(weights).__name__}"
    )


def load_weights(
    model: nn.Module,
    weights: WeightsArg,
    *,
    progress: bool = True,
    arch: str | None = None,
    new_classifier: bool = False,
    source: str | None = None,
) -> nn.Module:
    """Load ``weights`` (any form ``weights=`` accepts, see the module docstring) into ``model``; return it.

    The one loader of the zoo, ``antialias train`` and ``antialias eval``: the file is read safely,
    every value must be finite, and every key and shape must match (the reference's layout is
    remapped first).

    Args:
        model: the model to fill.
        weights: a catalog entry or name, a URL, a file or a state dict; ``None`` loads nothing.
        progress: show a progress bar while downloading.
        arch: the registered name, to find a catalog name's enum and for messages.
        new_classifier: a classifier (the model's last ``nn.Linear``) trained for another class
            count keeps the model's initialisation, with a message naming it; every other key loads
            strictly.
        source: how messages name the weights (default: from ``weights``).

    Raises:
        CheckpointError: refused, damaged, non-finite, or not fitting (the message lists the keys).
    """
    if weights is None:
        return model
    weights = resolve_weights(weights, arch)
    source = source or describe_weights(weights)
    state = read_state_dict(weights, progress=progress)
    broken = [k for k, v in state.items() if v.is_floating_point() and not v.isfinite().all()]
    if broken:
        raise CheckpointError(
            f"{source} hold NaN or Inf values in {_fmt(broken, 3)}: a damaged file or a diverged "
            "training, refused"
        )
    message = None
    if new_classifier:
        plain = {k: v for k, v in state.items() if not k.endswith(".filt")}
        names = list(remap_reference_state_dict(state, model))
        fresh, message = replace_classifier_weights(
            plain, model, source=source, remapped_keys=names if len(names) == len(plain) else None
        )
        state = {**state, **fresh}
    load_state_dict(model, state, source=source, arch=arch)
    if message:
        logger.warning(message)
    return model


def read_model_meta(weights: Any) -> dict[str, Any]:
    """The model description stored with ``weights`` (a local file or a mapping), or ``{}``.

    ``antialias train`` writes ``{"state_dict": ..., "antialias": {"arch", "num_classes",
    "filter_size", "options", "classes", ...}}`` in ``weights.pt`` and in every checkpoint (under
    ``"model"`` there). Files without it (torchvision's, the reference's) give ``{}``; an unreadable
    file also gives ``{}`` (the loader that follows reports it, naming the file).
    """
    obj: Any = weights
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if path.startswith(_URL_SCHEMES) or not os.path.isfile(path):
            return {}
        try:  # the one safe reader: CRCs checked, weights_only
            obj = safe_torch_load(path, what="weights")
        except Exception:  # noqa: BLE001  (the loader reports the file; here it has no description)
            return {}
    if isinstance(obj, Mapping) and isinstance(obj.get(MODEL_META_KEY), Mapping):
        return dict(obj[MODEL_META_KEY])
    return {}


def _torchvision_enum(weights: Any, arch: str) -> Any:
    """Torchvision's weights (an enum member, or a member name of torchvision's enum of ``arch``), or None."""
    import torchvision.models as tvm

    if isinstance(weights, tvm.WeightsEnum):
        try:
            expected = tvm.get_model_weights(arch)
        except (ValueError, KeyError):
            expected = None
        if expected is None or not isinstance(weights, expected):
            takes = (
                f"takes {expected.__name__}"
                if expected is not None
                else "has no torchvision weights"
            )
            raise ValueError(
                f"torchvision weights {type(weights).__name__}.{weights.name} are not for {arch!r}: "
                f"get_model({arch!r}) {takes}"
            )
        return weights
    if isinstance(weights, str) and not os.path.exists(weights) and "://" not in weights:
        try:
            enum = tvm.get_model_weights(arch)
        except (ValueError, KeyError):
            return None
        name = weights.rpartition(".")[2] if weights.startswith(enum.__name__ + ".") else weights
        from antialias.models._weights import get_model_weights

        with contextlib.suppress(ValueError):
            if name in get_model_weights(arch).__members__:
                return None  # our catalog's name wins (DEFAULT is the anti-aliased model)
        if name in enum.__members__:
            return enum[name]
    return None


def check_filter(saved: Any, given: FilterSpec | None, source: str) -> FilterSpec:
    """The filter to build with: ``saved`` (what the weights were trained with) unless ``given``
    differs, which is refused.

    Raises:
        ValueError: ``given`` is another filter than ``saved``.
        CheckpointError: ``saved`` is no filter.
    """
    try:
        taps = tuple(get_taps(saved))
    except (TypeError, ValueError):
        raise CheckpointError(
            f"{source} store filter_size={saved!r} in their description; expected a filter such as 4"
        ) from None
    if given is not None and tuple(get_taps(given)) != taps:
        raise ValueError(
            f"{source} were trained with filter_size={filter_name(saved)}, "
            f"got filter_size={filter_name(given)}"
        )
    return saved if given is None else given


def _meta_num_classes(meta: Mapping[str, Any], source: str) -> int | None:
    value = meta.get("num_classes")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise CheckpointError(
            f"{source} store num_classes={value!r} in their description; expected a positive int"
        )
    return value


def weights_num_classes(weights: WeightsArg) -> int | None:
    """The class count that ``weights`` give their classifier: their description (``antialias
    train`` stores it), else the shape of their last 2-D weight; ``None`` when neither tells."""
    saved = _meta_num_classes(read_model_meta(weights), describe_weights(weights))
    return saved if saved is not None else state_dict_num_classes(read_state_dict(weights))


def build_with_weights(
    builder: Callable[..., nn.Module], arch: str, kwargs: dict[str, Any]
) -> nn.Module:
    """Build ``arch`` with ``kwargs["weights"]``, reading the class count and filter from the weights.

    ``num_classes`` defaults to the weights' (the catalog's 1000, torchvision's categories, the
    description stored by ``antialias train``, else the checkpoint's classifier). A different
    ``num_classes`` re-initialises the classifier and loads everything else strictly, with a
    message naming the layer. A ``filter_size`` other than the one the weights were trained with is
    refused. torchvision's weights enums (``ResNet50_Weights.IMAGENET1K_V2``) and their member
    names are accepted for the matching architecture.
    """
    weights = kwargs["weights"]
    saved: int | None = None
    filter_size = kwargs.get("filter_size")
    tv = _torchvision_enum(weights, arch)
    if tv is not None:
        saved = len(tv.meta["categories"])
        weights = tv.url  # our loader: cached, hash-checked, one-line errors
    else:
        weights = resolve_weights(weights, arch)
        if isinstance(weights, WeightsEnum):
            saved = weights.value.num_classes
            if weights.value.filter_size is not None:
                filter_size = check_filter(weights.value.filter_size, filter_size, repr(weights))
        elif meta := read_model_meta(weights):
            source = describe_weights(weights)
            saved = _meta_num_classes(meta, source)
            if meta.get("arch") not in (None, arch):
                logger.warning(f"{source} describe a {meta['arch']!r} model, not {arch!r}")
            if meta.get("source") not in (None, "zoo"):
                # Same parameter names, another network: the numbers would be silently wrong.
                flag = "baseline" if meta["source"] == "torchvision" else "convert"
                logger.warning(
                    f"{source} were trained on the {meta['source']!r} model (antialias train "
                    f"--{flag}), not the zoo's {arch!r}: its parameter names match, its layers do not"
                )
            if meta.get("filter_size") is not None:
                filter_size = kwargs["filter_size"] = check_filter(
                    meta["filter_size"], filter_size, source
                )
    kwargs["weights"] = weights
    requested = kwargs.get("num_classes")
    state = None
    if saved is None:  # a file without a description: its classifier says
        state = read_state_dict(weights, progress=kwargs.get("progress", True))
        saved = state_dict_num_classes(state)
    if requested is None and saved is not None:
        kwargs["num_classes"] = saved
    if requested is None or requested == saved:
        return builder(**kwargs)
    # Another class count: build with a fresh head, load the rest strictly.
    if state is None:
        state = read_state_dict(weights, progress=kwargs.get("progress", True))
    if filter_size is None:
        filter_size = infer_filter_size(state)
    model = builder(**{**kwargs, "weights": None, "filter_size": filter_size})
    source = describe_weights(weights)
    return load_weights(model, state, arch=arch, new_classifier=True, source=source)
