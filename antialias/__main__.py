"""``python -m antialias`` runs the command line."""

import os
import sys

# ``python -m`` puts the working directory first on sys.path; a ``torchvision.py`` lying there would
# then replace torchvision in every later import. The command line imports installed modules only
# (as the ``antialias`` console script does); a user's file is named by its path.
sys.path[:] = [p for p in sys.path if p not in ("", ".") and os.path.realpath(p) != os.path.realpath(os.getcwd())]

from antialias.cli import console_main  # noqa: E402

if __name__ == "__main__":
    console_main()
