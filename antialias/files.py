"""Result files for applications: check an output path before the work, write JSON that a crash cannot truncate.

The public face of the library's disk plumbing (the private ``antialias._io``, which every load and
write of the library goes through): the command line and the demo use these names, as a user's script may.

Example:
    >>> import json, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "results.json"
    >>> check_output_path(path, kind="file", what="--output") == path
    True
    >>> json.loads(write_json(path, {"top1": float("nan")}).read_text())
    {'top1': None}
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from antialias._io import OUTPUT_MARKER as OUTPUT_MARKER
from antialias._io import atomic_write_text, json_safe
from antialias._io import check_output_path as check_output_path
from antialias._io import is_own_output as is_own_output
from antialias._io import record_outputs as record_outputs

__all__ = ["OUTPUT_MARKER", "check_output_path", "is_own_output", "record_outputs", "write_json"]


def write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write ``obj`` to ``path`` as strict, indented JSON, atomically (a crash leaves the old file or the new one).

    NaN and infinities become ``null`` and tensors lists, so that every JSON reader accepts the file. A
    missing folder is created.

    Returns:
        The path written.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(path, json.dumps(json_safe(obj), indent=2, allow_nan=False) + "\n")
