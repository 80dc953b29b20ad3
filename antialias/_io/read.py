"""Reading files without running code from them, after checking their integrity.

- :func:`safe_torch_load` reads PyTorch files with ``torch.load(weights_only=True)`` (only tensors and
  plain Python values; a pickle that would call a function is refused, and the message says so), after
  :func:`verify_file` has checked the file: the CRC-32 of every member of a zip-format file, and the
  SHA-256 recorded beside it (``<file>.sha256``) when there is one.
- :func:`load_exported_program` reads ``torch.export`` files (``.pt2``) with every unpickling forced to
  ``weights_only`` and refuses archives that hold pickled Python objects, or expressions and names
  that torch would run or write into the Python code it generates.
- :func:`restricted_pickle_load` unpickles plain data (CIFAR-10's batches) and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import keyword
import logging
import os
import pickle
import re
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import torch

__all__ = [
    "HASH_SUFFIX",
    "CheckpointError",
    "UnsafeFileError",
    "hash_record_path",
    "load_exported_program",
    "read_hash_record",
    "restricted_pickle_load",
    "restricted_unpickling",
    "safe_torch_load",
    "sha256_file",
    "verify_file",
    "verify_safetensors",
]

logger = logging.getLogger(__name__)

HASH_SUFFIX = ".sha256"
"""Suffix of the file that records another file's SHA-256 (``sha256sum`` format)."""


class CheckpointError(ValueError):
    """A file of weights or a checkpoint that cannot be used: refused, damaged, wrong hash, or not fitting."""


class UnsafeFileError(CheckpointError):
    """A file refused because loading it would run code (a pickle that calls a function)."""


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The SHA-256 of a file's content, as 64 hex digits."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def hash_record_path(path: str | os.PathLike[str]) -> Path:
    """Where the SHA-256 of ``path`` is recorded: ``<path>.sha256``."""
    path = Path(path)
    return path.with_name(path.name + HASH_SUFFIX)


def read_hash_record(path: str | os.PathLike[str]) -> str | None:
    """The SHA-256 recorded beside ``path``, or None when there is no (readable) record."""
    record = hash_record_path(Path(path))
    try:
        text = record.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    digest = text.split()[0].lower() if text else ""
    return digest if re.fullmatch(r"[0-9a-f]{64}", digest) else None


def verify_file(
    path: str | os.PathLike[str], *, expected_sha256: str | None = None, what: str = "file"
) -> None:
    """Check that ``path`` is intact before it is loaded.

    Three checks, each when it applies: its SHA-256 starts with ``expected_sha256`` (a prefix or
    the full digest); it equals the digest recorded beside it (``<path>.sha256``); and its own
    structure: for a zip archive (torch's default format, ``.pt2``) every member's CRC-32 matches
    its data, for a ``.safetensors`` file :func:`verify_safetensors`.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is damaged or not the expected one (the message names it and says
            which check failed).
    """
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise CheckpointError(
                f"{what} {str(path)!r} is a folder, not a file; expected a file of weights"
            )
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist")
    if path.stat().st_size == 0:
        raise CheckpointError(
            f"{what} {str(path)!r} is damaged (truncated or corrupt): the file is empty (0 bytes)"
        )
    recorded = read_hash_record(path)
    if expected_sha256 is not None or recorded is not None:
        digest = sha256_file(path)
        if expected_sha256 is not None and not digest.startswith(expected_sha256.lower()):
            raise CheckpointError(
                f"{what} {str(path)!r} is not the expected file: its SHA-256 {digest[:16]}... does not start "
                f"with {expected_sha256!r}"
            )
        if recorded is not None and digest != recorded:
            raise CheckpointError(
                f"{what} {str(path)!r} is damaged: its SHA-256 {digest[:16]}... differs from the one recorded "
                f"in {str(hash_record_path(path))!r} when it was written ({recorded[:16]}...)"
            )
    if path.name.endswith(".safetensors"):
        verify_safetensors(path, what=what)
    elif zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                starts = [info.header_offset for info in archive.infolist()]
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            raise CheckpointError(
                f"{what} {str(path)!r} is damaged: not a readable zip archive ({exc})"
            ) from None
        if bad is not None:
            raise CheckpointError(
                f"{what} {str(path)!r} is damaged: the CRC-32 of its member {bad!r} does not match its data"
            )
        if starts and min(starts) != 0:
            # The zip directory found is a stored member's own (a .pt2 stores zips): the file's end,
            # where its own directory was, is missing.
            raise CheckpointError(
                f"{what} {str(path)!r} is damaged (truncated): its zip directory is missing"
            )


# Bytes per element of the safetensors dtypes torch reads.
_SAFETENSORS_ITEMSIZE = {
    "F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
    "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1,
}  # fmt: skip


def verify_safetensors(path: str | os.PathLike[str], *, what: str = "file") -> None:
    """Check the structure of a ``.safetensors`` file: its header is JSON within the file, every
    tensor has a known dtype, a shape of non-negative ints and a byte range of exactly
    ``prod(shape) * itemsize`` bytes, and the ranges tile the data that follows the header with
    no gap, overlap or trailing byte.

    Raises:
        CheckpointError: the file is damaged (the message names it and the first fault).
    """
    import math

    path = Path(path)

    def damaged(why: str) -> CheckpointError:
        return CheckpointError(f"{what} {str(path)!r} is damaged or not a safetensors file: {why}")

    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) < 8:
            raise damaged(f"{size} bytes, shorter than the 8-byte header length")
        length = int.from_bytes(head, "little")
        if length > size - 8:
            raise damaged(
                f"its header length {length} runs past the end of the file ({size} bytes)"
            )
        try:
            header = json.loads(f.read(length).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise damaged(f"its header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise damaged("its header is not a JSON object")
    ranges = []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise damaged(f"tensor {name!r} has no description")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _SAFETENSORS_ITEMSIZE:
            raise damaged(f"tensor {name!r} has an unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
        ):
            raise damaged(f"tensor {name!r} has a shape that is not a list of sizes: {shape!r}")
        if not (
            isinstance(offsets, list)
            and len(offsets) == 2
            and all(isinstance(n, int) and not isinstance(n, bool) for n in offsets)
            and 0 <= offsets[0] <= offsets[1]
        ):
            raise damaged(f"tensor {name!r} has bad data offsets {offsets!r}")
        expected = math.prod(shape) * _SAFETENSORS_ITEMSIZE[dtype]
        if offsets[1] - offsets[0] != expected:
            raise damaged(
                f"tensor {name!r} ({dtype}, shape {shape}) spans {offsets[1] - offsets[0]} bytes, "
                f"expected {expected}"
            )
        ranges.append((offsets[0], offsets[1], name))
    data = size - 8 - length
    end = 0
    for begin, stop, name in sorted(ranges):
        if begin != end:
            fault = "overlaps the tensor before it" if begin < end else "leaves a gap before it"
            raise damaged(f"tensor {name!r} {fault} (byte {begin}, expected {end})")
        end = stop
    if end != data:
        raise damaged(f"its tensors span {end} bytes but the file holds {data} bytes of data")


def _unpickling_reason(text: str) -> str:
    """torch's reason for refusing a pickle, without its advice (which suggests disabling
    ``weights_only``)."""
    found = re.search(r"WeightsUnpickler error:\s*([^\n]+)", text)
    if found:
        reason = found.group(1)
    else:
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        advice = (
            "weights_only",
            "Weights only load failed",
            "Check the documentation",
            "(1)",
            "(2)",
        )
        lines = [line for line in lines if not any(word in line for word in advice)]
        reason = lines[0] if lines else "refused by torch's weights-only unpickler"
    return reason.split(". Please")[0].split(" Please use")[0].strip().rstrip(".")


# torch's weights-only unpickler words a pickle that names a function or class in these ways.
_CODE_BEARING = re.compile(
    r"unsupported global|not an allowed global|is blocked|call reduce|create new object|"
    r"can only build|allowlisted",
    re.IGNORECASE,
)


def safe_torch_load(
    path: str | os.PathLike[str],
    *,
    what: str = "file",
    map_location: str | torch.device = "cpu",
    expected_sha256: str | None = None,
    mmap: bool | None = None,
) -> Any:
    """Read a PyTorch file without running code from it, after checking its integrity.

    The file is verified by :func:`verify_file`, then read with ``torch.load(weights_only=True)``:
    only tensors and plain Python values come back; a pickle that would call any other function is
    refused (:class:`UnsafeFileError`), never executed.

    Args:
        path: the file (zip or legacy torch format).
        what: what the file is, for messages (``"weights"``, ``"checkpoint"``).
        map_location: where tensors are put.
        expected_sha256: a SHA-256 (or prefix) the file must have.
        mmap: memory-map a zip-format file (default: yes for zip files, which the legacy format
            cannot be).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeFileError: the file holds Python objects whose unpickling would run code.
        CheckpointError: the file is damaged, not the expected one, or not a PyTorch file.
    """
    path = Path(path)
    verify_file(path, expected_sha256=expected_sha256, what=what)
    if mmap is None:
        mmap = zipfile.is_zipfile(path)
    with path.open("rb") as f:
        head = f.read(2)
    if head != b"PK" and head[:1] != b"\x80":  # torch.save writes a zip archive, or a pickle
        raise CheckpointError(
            f"cannot read {what} {str(path)!r}: it is neither a zip archive nor a pickle (not a "
            "PyTorch file, or truncated or corrupt); expected a file written by torch.save"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        reason = _unpickling_reason(text)
        if _CODE_BEARING.search(text):
            raise UnsafeFileError(
                f"refusing to load {what} {str(path)!r}: it holds code-bearing pickled Python objects "
                f"whose unpickling could run code ({reason}); nothing from it was run. Expected a file "
                "of tensors (a state dict): re-save it with torch.save(model.state_dict(), path)"
            ) from None
        logger.debug(f"torch.load({str(path)!r}) failed: {reason}")
        raise CheckpointError(
            f"cannot read {what} {str(path)!r}: the file is truncated or corrupt, or not a PyTorch "
            "file of tensors"
        ) from None
    except (
        RuntimeError,
        EOFError,
        zipfile.BadZipFile,
        ValueError,
        KeyError,
        IndexError,
        UnicodeDecodeError,
        OSError,
    ):
        # torch's own message ("pop from empty list") means nothing to the user: -v logs it.
        logger.debug(f"torch.load({str(path)!r}) failed", exc_info=True)
        raise CheckpointError(
            f"cannot read {what} {str(path)!r}: the file is truncated or corrupt, or not a PyTorch "
            "file"
        ) from None


# torch.export archives (.pt2), as torch reads them: each model ``models/<name>.json`` has a
# weights configuration and a constants configuration (JSON) whose entries name a payload by
# ``path_name``; torch unpickles an entry whose ``use_pickle`` is true, and a constant whose
# ``path_name`` starts with ``custom_obj_`` or ``opaque_obj_`` (``pickle.loads``), whatever the
# members are called. Members under ``data/aotinductor/`` are compiled code, and the legacy
# ``data/weights/<name>.pt`` / ``data/constants/<name>.pt`` are pickles.
_PT2_TENSOR_PREFIX = {"weights": "weight_", "constants": "tensor_"}
_PT2_PLAIN_NAME = re.compile(r"[A-Za-z0-9_]+")
# Graph targets an exported model may call besides torch operators: arithmetic on sizes.
_PT2_OPERATOR_NAMES = frozenset(
    "getitem add sub mul truediv floordiv mod pow neg pos abs eq ne lt le gt ge "
    "and_ or_ xor not_ invert lshift rshift".split()
)
# Names a symbolic-size expression may use (torch parses them with sympy, which evaluates Python).
_PT2_ASSUMPTIONS = frozenset(
    "positive negative nonnegative nonpositive integer real finite infinite zero nonzero "
    "even odd rational prime commutative extended_real".split()
)
_PT2_SYMBOL_NAME = re.compile(r"[a-z]{1,4}[0-9]+")
_PT2_STRING = re.compile(r"'[A-Za-z_][A-Za-z0-9_]*'")
# torch rebuilds the graph as an FX GraphModule, whose Python source FX generates and runs: the
# names of the program's inputs, nodes, keyword arguments and subgraphs, the attribute paths of its
# parameters, buffers and constants, the forward's argument names and its keyword inputs are
# written into that source as they are (a placeholder's name even into the ``def`` line, which runs
# on load). Each must be a Python identifier, or a dotted path of plain names (a submodule's name
# may also be a number or hold a hyphen, ``blocks.layer-1.weight``: FX reads such a part with
# ``getattr(module, "layer-1")``, where no quote or backslash may appear).
_PT2_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_PT2_ATTRIBUTE_PATH = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
# What each rule accepts, as a refusal names it.
_PT2_RULES = {
    _PT2_IDENTIFIER: "a Python identifier (keywords are not)",
    _PT2_ATTRIBUTE_PATH: "a dotted path of plain names",
}
# Fields that hold a name (an empty or missing name, which torch allows for positional arguments
# and old nodes, cannot carry code) and fields that hold an attribute path.
_PT2_NAME_FIELDS = frozenset({"name", "as_name", "user_input_name"})
_PT2_PATH_FIELDS = frozenset(
    {"parameter_name", "buffer_name", "tensor_constant_name", "custom_obj_name"}
)


def _pt2_refuse(path: Path, why: str) -> UnsafeFileError:
    return UnsafeFileError(
        f"refusing to load torch.export file {str(path)!r}: {why} (loading it could run code); "
        "nothing from it was run. Expected "
        "a .pt2 of a plain exported model (tensors only): export it again with torch.export.save"
    )


def _pt2_damaged(path: Path, why: str) -> CheckpointError:
    return CheckpointError(
        f"torch.export file {str(path)!r} is damaged or not a torch.export archive: {why}"
    )


def _pt2_sympy_names() -> frozenset[str]:
    import sympy
    from torch.utils._sympy import functions

    names = {"True", "False", "None", "oo", "zoo", "nan", "pi", "E", "I"}
    for module in (sympy, functions):
        for name in dir(module):
            obj = getattr(module, name)
            if isinstance(obj, type) and issubclass(obj, sympy.Basic) and not name.startswith("_"):
                names.add(name)
    return frozenset(names | _PT2_ASSUMPTIONS)


_PT2_EXPRESSION_OPS = frozenset("( ) , + - * / % ** // = < > <= >= == != & | ~ ^".split())
# Input-shape guards torch compiles into the exported module (``L['x'].size()[0] >= 2``).
_PT2_GUARD_OPS = _PT2_EXPRESSION_OPS | {"[", "]", "."}
_PT2_GUARD_NAMES = frozenset(
    "L size stride storage_offset dim numel math isnan inf and or not is True False None "
    "abs min max len int float".split()
)


def _pt2_safe_expression(text: str, names: frozenset[str], ops: frozenset[str]) -> bool:
    """Whether ``text`` is plain arithmetic: numbers, ``'name'`` strings, the operators ``ops``,
    and the names ``names`` or size-symbol names (``s0``)."""
    import io
    import tokenize

    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return False
    for token in tokens:
        kind, value = token.type, token.string
        if kind in (tokenize.NEWLINE, tokenize.NL, tokenize.ENDMARKER):
            continue
        if kind == tokenize.NUMBER and re.fullmatch(r"[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?", value):
            continue
        if kind == tokenize.STRING and _PT2_STRING.fullmatch(value):
            continue
        if kind == tokenize.OP and value in ops:
            continue
        if kind == tokenize.NAME and (value in names or _PT2_SYMBOL_NAME.fullmatch(value)):
            continue
        return False
    return True


def _pt2_expressions(node: Any) -> Iterator[Any]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr_str":
                yield value
            else:
                yield from _pt2_expressions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _pt2_expressions(value)


def _pt2_names(node: Any, where: str) -> Iterator[tuple[str, Any, re.Pattern[str]]]:
    """The (field, value, rule) of every name and attribute path in a program's JSON; node
    metadata (free text that code generation does not print) is passed over."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _PT2_NAME_FIELDS:
                if value is not None and value != "":
                    yield f"{where}.{key}", value, _PT2_IDENTIFIER
            elif key in _PT2_PATH_FIELDS:
                yield f"{where}.{key}", value, _PT2_ATTRIBUTE_PATH
            elif key == "forward_arg_names":
                for name in value if isinstance(value, list) else [value]:
                    yield f"{where}.{key}", name, _PT2_IDENTIFIER
            elif key == "in_spec":
                for name in _pt2_keyword_inputs(value):
                    yield f"{where}.in_spec (a keyword input)", name, _PT2_IDENTIFIER
            elif key != "metadata":
                yield from _pt2_names(value, f"{where}.{key}")
    elif isinstance(node, list):
        for value in node:
            yield from _pt2_names(value, where)


def _pt2_keyword_inputs(spec: Any) -> list[Any]:
    """The keyword-input names of a module's input spec (pytree JSON): the keys of the dict that
    follows the positional tuple, which FX writes into the forward's source."""
    if spec is None:
        return []
    try:
        root = json.loads(spec) if isinstance(spec, str) else None
        if root is None or root[0] != 1:
            return [spec]
        children = root[1]["children_spec"]
        if root[1]["type"] != "builtins.tuple" or len(children) != 2:
            return []
        if children[1]["type"] != "builtins.dict":
            return []
        keys = json.loads(children[1]["context"])
    except (ValueError, TypeError, KeyError, IndexError):
        return [spec]
    return keys if isinstance(keys, list) else [keys]


def _check_pt2_archive(path: Path) -> None:
    # Reads the archive as torch will and refuses anything torch would unpickle or run.
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if len(set(names)) != len(names):
                raise _pt2_refuse(path, "it has several members of the same name")
            root = names[0].split("/", 1)[0] + "/" if names and "/" in names[0] else ""
            records = {n[len(root) :]: n for n in names if root and n.startswith(root)}

            def read(record: str) -> bytes:
                return archive.read(records[record])

            if "archive_version" not in records and "version" not in records:
                raise _pt2_damaged(
                    path, "it has no 'archive_version' member (truncated, or another kind of zip)"
                )
            if "archive_version" not in records or "archive_format" not in records:
                raise CheckpointError(
                    f"{str(path)!r} is not a torch.export file of the current format (no "
                    "'archive_version' member); older .pt2 files are pickles and are refused: "
                    "export the model again with torch.export.save"
                )
            if read("archive_version").decode("utf-8", "replace").strip() != "0":
                raise _pt2_damaged(path, "its archive_version is not 0 (the format torch reads)")
            if any(r.startswith("data/aotinductor/") for r in records):
                raise _pt2_refuse(path, "it holds AOTInductor-compiled code (data/aotinductor/)")
            models = [
                r[len("models/") : -len(".json")]
                for r in records
                if r.startswith("models/") and r.endswith(".json")
            ]
            if "model" not in models:
                raise _pt2_damaged(path, "it has no models/model.json")
            allowed = _pt2_sympy_names()
            for model in models:
                for kind in ("weights", "constants"):
                    if f"data/{kind}/{model}.pt" in records:
                        raise _pt2_refuse(
                            path, f"its {kind} are a pickle (data/{kind}/{model}.pt, old format)"
                        )
                    config_name = f"data/{kind}/{model}_{kind}_config.json"
                    if config_name not in records:
                        raise _pt2_damaged(path, f"it has no {config_name}")
                    config = json.loads(read(config_name))
                    entries = config.get("config") if isinstance(config, dict) else None
                    if not isinstance(entries, dict):
                        raise _pt2_damaged(path, f"{config_name} has no 'config' mapping")
                    for fqn, entry in entries.items():
                        name = entry.get("path_name") if isinstance(entry, dict) else None
                        if not isinstance(name, str):
                            raise _pt2_damaged(path, f"{config_name}: {fqn!r} has no path_name")
                        if entry.get("use_pickle", False) is not False:
                            raise _pt2_refuse(
                                path, f"{config_name} names a pickled payload ({fqn!r} -> {name!r})"
                            )
                        if not (
                            name.startswith(_PT2_TENSOR_PREFIX[kind])
                            and _PT2_PLAIN_NAME.fullmatch(name)
                        ):
                            raise _pt2_refuse(
                                path,
                                f"{config_name} names a payload that is not a plain tensor "
                                f"({fqn!r} -> {name!r}; torch would unpickle or reject it)",
                            )
                        if not _PT2_ATTRIBUTE_PATH.fullmatch(fqn):
                            raise _pt2_refuse(
                                path,
                                f"{config_name} names an attribute {fqn[:60]!r}, not a dotted "
                                "path of plain names; torch writes it into the Python code it "
                                "generates and runs",
                            )
                program = json.loads(read(f"models/{model}.json"))
                guards = program.get("guards_code", []) if isinstance(program, dict) else None
                if not isinstance(guards, list):
                    raise _pt2_damaged(path, f"models/{model}.json: guards_code is not a list")
                checks = [
                    (text, allowed, _PT2_EXPRESSION_OPS) for text in _pt2_expressions(program)
                ]
                checks += [(text, _PT2_GUARD_NAMES, _PT2_GUARD_OPS) for text in guards]
                for field, value, rule in _pt2_names(program, ""):
                    matches = isinstance(value, str) and rule.fullmatch(value)
                    # A keyword matches the identifier rule, but FX's source would not compile.
                    if not matches or (rule is _PT2_IDENTIFIER and keyword.iskeyword(value)):
                        raise _pt2_refuse(
                            path,
                            f"models/{model}.json: {field.lstrip('.')} is {str(value)[:60]!r}, "
                            f"not {_PT2_RULES[rule]}; torch writes it into the Python code it "
                            "generates and runs",
                        )
                for text, words, ops in checks:
                    if not isinstance(text, str) or not _pt2_safe_expression(text, words, ops):
                        raise _pt2_refuse(
                            path,
                            f"models/{model}.json holds a size expression or guard that is not plain "
                            f"arithmetic ({str(text)[:60]!r}; torch would run it as Python)",
                        )
    except (KeyError, ValueError, UnicodeDecodeError, zipfile.BadZipFile, OSError, EOFError) as exc:
        if isinstance(exc, CheckpointError):
            raise
        raise _pt2_damaged(
            path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        ) from None


def _check_pt2_graph(path: Path, program: Any) -> None:
    import math
    import operator

    for module in program.graph_module.modules():
        graph = getattr(module, "graph", None)
        for node in getattr(graph, "nodes", ()):
            if node.op != "call_function":
                continue
            target = node.target
            if isinstance(
                target,
                (
                    torch._ops.OpOverload,
                    torch._ops.OpOverloadPacket,
                    torch._ops.HigherOrderOperator,
                ),
            ):
                continue
            name = getattr(target, "__name__", "")
            if getattr(operator, name, None) is target and name in _PT2_OPERATOR_NAMES:
                continue
            if getattr(math, name, None) is target:
                continue
            if name.startswith(("sym_", "_sym_")) and getattr(torch, name, None) is target:
                continue
            raise _pt2_refuse(path, f"its graph calls {target!r}, which is not a torch operator")


class _NoPickle:
    """Stands in for the ``pickle`` module inside torch's .pt2 reader: nothing is unpickled."""

    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def loads(*_: Any, **__: Any) -> Any:
        raise UnsafeFileError("a pickled object in a torch.export file was refused")

    load = loads


@contextlib.contextmanager
def _no_unpickling() -> Iterator[None]:
    # torch.export unpickles sample inputs with weights_only=True and falls back to
    # weights_only=False; torch's own switch forces weights_only=True in every torch.load call,
    # and the reader's module-level pickle is replaced so that pickle.loads cannot run.
    from torch.export.pt2_archive import _package

    key = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"
    before = os.environ.get(key)
    os.environ[key] = "1"
    original = _package.pickle
    _package.pickle = _NoPickle  # type: ignore[assignment]
    try:
        yield
    finally:
        _package.pickle = original
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def load_exported_program(path: str | os.PathLike[str]) -> Any:
    """Read a ``torch.export`` file (``.pt2``) without unpickling or running anything from it.

    The file is verified by :func:`verify_file` (its recorded SHA-256 when there is one, and the
    CRC-32 of every member). Then the archive is read as torch will read it, and it is refused when
    its weights or constants configuration names any pickled payload (an entry with ``use_pickle``,
    or a ``path_name`` that is not a plain tensor file, whatever the members are called), when it
    holds compiled code or the old pickled format, when a size expression is not plain arithmetic,
    when a name that torch writes into the Python source it generates for the graph (an input's,
    a node's, a keyword argument's, a subgraph's, a forward argument's or keyword input's) is not an
    identifier or a parameter's, buffer's or constant's path is not a dotted path of plain names,
    or when its graph calls anything but torch operators and arithmetic. torch's reader then runs
    with every ``torch.load`` forced to ``weights_only=True`` and ``pickle.loads`` disabled.

    Returns:
        The ``torch.export.ExportedProgram``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        UnsafeFileError: the archive holds something whose loading could run code.
        CheckpointError: not a torch.export archive, or damaged (truncated, bad CRC, wrong hash).
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size > 0 and not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            head = f.read(4)
        if head.startswith(b"PK"):
            raise _pt2_damaged(path, "a truncated or corrupt zip archive")
        raise CheckpointError(
            f"{str(path)!r} is not a torch.export file (.pt2 files are zip archives)"
        )
    verify_file(path, what="torch.export file")
    _check_pt2_archive(path)
    from torch.export.pt2_archive._package import load_pt2

    try:
        with _no_unpickling():
            program = load_pt2(path).exported_programs["model"]
    except UnsafeFileError:
        raise _pt2_refuse(path, "part of it is a pickled Python object") from None
    except pickle.UnpicklingError as exc:
        raise _pt2_refuse(
            path, f"part of it holds Python objects ({_unpickling_reason(str(exc))})"
        ) from None
    except Exception as exc:  # torch.export raises many types for foreign files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise _pt2_damaged(path, first) from None
    _check_pt2_graph(path, program)
    return program


# Globals a pickle of plain data (dicts, lists, bytes, numpy arrays) may name: CIFAR-10's batches.
_DATA_PICKLE_GLOBALS = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }
)


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _DATA_PICKLE_GLOBALS:
            return super().find_class(module, name)
        raise UnsafeFileError(
            f"refusing to unpickle {module}.{name}: a data file may hold only plain values and numpy arrays "
            "(loading this one could run code); nothing from it was run"
        )


def restricted_pickle_load(file: IO[bytes], *, encoding: str = "ASCII", **_: Any) -> Any:
    """``pickle.load`` that builds only plain values and numpy arrays; any other global is refused.

    Raises:
        UnsafeFileError: the pickle names a function or class outside that list.
    """
    return _DataUnpickler(file, encoding=encoding).load()


@contextlib.contextmanager
def restricted_unpickling(module: Any) -> Iterator[None]:
    """Within the block, ``module``'s ``pickle.load`` is :func:`restricted_pickle_load`.

    For third-party readers of pickled data sets (torchvision's CIFAR-10 reads its batches with
    ``pickle.load``): a planted batch cannot run code.
    """
    original = module.pickle
    module.pickle = types.SimpleNamespace(
        load=restricted_pickle_load, loads=None, UnpicklingError=pickle.UnpicklingError
    )
    try:
        yield
    finally:
        module.pickle = original
