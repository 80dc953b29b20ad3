"""The ``antialias`` command line: one module per subcommand.

Each subcommand lives in ``antialias/cli/<name>.py`` and exposes two functions::

    def add_parser(subparsers) -> argparse.ArgumentParser  # registers the subcommand
    def run(args: argparse.Namespace) -> int               # executes it, returns the exit code

Bad user input raises :class:`CLIError` (or ``ValueError``/``FileNotFoundError``; a missing optional
extra raises ``ImportError``); :func:`main` turns it into a one-line message on stderr and exit code 2,
without a traceback (``antialias -v`` logs the traceback too).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

__all__ = ["CLIError", "get_args_parser", "main"]

# Subcommand modules, in the order ``antialias --help`` lists them.
_COMMANDS = ("info", "demo", "eval", "train")


class CLIError(Exception):
    """A user error: printed as ``antialias <command>: error: <message>``, exit code 2."""


def _available_commands() -> list[str]:
    names = []
    for name in _COMMANDS:
        if importlib.util.find_spec(f"antialias.cli.{name}") is not None:
            names.append(name)
    return names


def get_args_parser() -> argparse.ArgumentParser:
    """Return the parser of the ``antialias`` command with every available subcommand."""
    from antialias import __version__

    parser = argparse.ArgumentParser(
        prog="antialias",
        description="Anti-aliased CNNs: layers, model zoo, shift-invariance evaluation and training.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"antialias {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _available_commands():
        module = importlib.import_module(f"antialias.cli.{name}")
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (CLIError, ValueError, TypeError, FileNotFoundError, NotADirectoryError, KeyError, ImportError) as exc:
        # ImportError: an optional extra is missing (e.g. scikit-learn for the demo); the message says which.
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        logging.getLogger(__name__).debug("traceback of the error below", exc_info=True)  # shown with -v
        print(f"antialias {args.command}: error: {message}", file=sys.stderr)
        return 2


def console_main() -> None:
    """Entry point of the ``antialias`` console script."""
    sys.exit(main())
