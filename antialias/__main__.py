"""``python -m antialias`` runs the command line."""

import os
import sys

# ``python -m`` puts the working directory first on sys.path; a ``torchvision.py`` lying there would
# then replace torchvision in every later import. The working directory moves to the end, behind the
# installed modules (as for the ``antialias`` console script); a user's file is named by its path. It is
# moved, not dropped: an editable install of this package may live there, and worker processes that
# the demo spawns inherit this sys.path and must still import ``antialias``.
_cwd = os.path.realpath(os.getcwd())
_here = [p for p in sys.path if p in ("", ".") or os.path.realpath(p) == _cwd]
sys.path[:] = [p for p in sys.path if p not in _here] + [_cwd]

from antialias.cli import console_main  # noqa: E402

if __name__ == "__main__":
    console_main()
