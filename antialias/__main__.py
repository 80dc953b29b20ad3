"""``python -m antialias`` runs the command line."""

from antialias.cli import console_main

if __name__ == "__main__":
    console_main()
