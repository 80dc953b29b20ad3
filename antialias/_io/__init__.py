"""Safe reading and durable writing of files: the one place where the library touches the disk.

Everything that loads a file of weights or a checkpoint, writes a result, or claims a run folder
goes through these functions, so the promises below hold everywhere:

- **No code from a file** (:mod:`~antialias._io.read`): :func:`safe_torch_load` reads PyTorch files
  with ``torch.load(weights_only=True)`` after checking their integrity (zip CRCs, and the SHA-256
  recorded beside the file when there is one); :func:`load_exported_program` reads ``torch.export``
  files without unpickling anything (an archive whose configuration names a pickle is refused).
- **Atomic writes** (:mod:`~antialias._io.write`): :func:`atomic_write` and :func:`atomic_save` leave
  the old complete file or the new complete file, never a truncated one; :func:`write_hash_record`
  stores a file's SHA-256 beside it (``<file>.sha256``, the format of ``sha256sum``), which
  :func:`verify_file` checks; :func:`check_output_path` refuses an unusable output before any work.
- **One run per folder** (:mod:`~antialias._io.lock`): :class:`RunLock` holds an exclusive lock on a
  run folder for the life of the run; a second run on the same folder stops at once, naming the holder.
"""

from antialias._io.lock import RunLock as RunLock
from antialias._io.lock import RunLockedError as RunLockedError
from antialias._io.read import HASH_SUFFIX as HASH_SUFFIX
from antialias._io.read import CheckpointError as CheckpointError
from antialias._io.read import UnsafeFileError as UnsafeFileError
from antialias._io.read import hash_record_path as hash_record_path
from antialias._io.read import load_exported_program as load_exported_program
from antialias._io.read import read_hash_record as read_hash_record
from antialias._io.read import restricted_pickle_load as restricted_pickle_load
from antialias._io.read import restricted_unpickling as restricted_unpickling
from antialias._io.read import safe_torch_load as safe_torch_load
from antialias._io.read import sha256_file as sha256_file
from antialias._io.read import verify_file as verify_file
from antialias._io.read import verify_safetensors as verify_safetensors
from antialias._io.write import OUTPUT_MANIFEST as OUTPUT_MANIFEST
from antialias._io.write import OUTPUT_MARKER as OUTPUT_MARKER
from antialias._io.write import atomic_save as atomic_save
from antialias._io.write import atomic_write as atomic_write
from antialias._io.write import atomic_write_text as atomic_write_text
from antialias._io.write import check_output_path as check_output_path
from antialias._io.write import is_own_output as is_own_output
from antialias._io.write import json_safe as json_safe
from antialias._io.write import record_outputs as record_outputs
from antialias._io.write import write_hash_record as write_hash_record

__all__ = [
    "HASH_SUFFIX",
    "OUTPUT_MANIFEST",
    "OUTPUT_MARKER",
    "CheckpointError",
    "RunLock",
    "RunLockedError",
    "UnsafeFileError",
    "atomic_save",
    "atomic_write",
    "atomic_write_text",
    "check_output_path",
    "hash_record_path",
    "is_own_output",
    "json_safe",
    "load_exported_program",
    "read_hash_record",
    "restricted_pickle_load",
    "record_outputs",
    "restricted_unpickling",
    "safe_torch_load",
    "sha256_file",
    "verify_file",
    "verify_safetensors",
    "write_hash_record",
]
