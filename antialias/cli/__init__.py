"""The ``antialias`` command line: one module per subcommand.

Each subcommand lives in ``antialias/cli/<name>.py`` and exposes two functions::

    def add_parser(subparsers) -> argparse.ArgumentParser  # registers the subcommand (add_command)
    def run(args: argparse.Namespace) -> int               # executes it, returns the exit code

The subcommands share :func:`add_command` (one help format), :func:`csv_list` and :func:`add_on_corrupt`.
They are applications of the library: they import its public names only (``tests/test_architecture.py``).
Bad user input raises :class:`CLIError` (or ``ValueError``/``FileNotFoundError``; a missing optional
extra raises ``ImportError``); :func:`main` turns it into a one-line message on stderr and exit code 2,
without a traceback (``antialias -v`` logs the traceback too).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["CLIError", "get_args_parser", "main"]

# Subcommand modules, in the order ``antialias --help`` lists them.
_COMMANDS = ("info", "demo", "eval", "train")


class CLIError(Exception):
    """A user error: printed as ``antialias <command>: error: <message>``, exit code 2."""


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Defaults in the help, except ``None`` and those of flags (which say nothing); a text with line
    breaks (an examples epilog) is kept as written, any other is wrapped."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.nargs == 0 or action.default is None:
            return action.help
        return super()._get_help_string(action)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text:
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def add_command(
    subparsers: Any, name: str, help: str, description: str, epilog: str | None = None
) -> argparse.ArgumentParser:
    """Register the subcommand ``name``, its help in the house format (:class:`HelpFormatter`)."""
    return subparsers.add_parser(
        name, help=help, description=description, epilog=epilog, formatter_class=HelpFormatter
    )


def csv_list(value: str) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``: an option's comma-separated values."""
    return [v.strip() for v in value.split(",") if v.strip()]


def add_on_corrupt(group: Any) -> None:
    """The ``--on-corrupt`` option of the commands that read an image folder."""
    group.add_argument(
        "--on-corrupt",
        choices=("fail", "skip"),
        default="fail",
        help="an unreadable image: stop with its path, or skip it with a warning (counted)",
    )


def _available_commands() -> list[str]:
    return [
        name for name in _COMMANDS if importlib.util.find_spec(f"antialias.cli.{name}") is not None
    ]


def get_args_parser() -> argparse.ArgumentParser:
    """Return the parser of the ``antialias`` command with every available subcommand."""
    from antialias import __version__

    parser = argparse.ArgumentParser(
        prog="antialias",
        description="Anti-aliased CNNs: layers, model zoo, shift-invariance evaluation and training.",
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"antialias {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _available_commands():
        module = importlib.import_module(f"antialias.cli.{name}")
        sub = module.add_parser(subparsers)
        sub.set_defaults(_run=module.run)
    return parser


def _own_or_warning(record: logging.LogRecord) -> bool:
    """The command's own messages at every level; other libraries' from WARNING up (matplotlib's
    "generated new fontManager" is no news to the user)."""
    own = record.name == "antialias" or record.name.startswith(("antialias.", "__main__"))
    return own or record.levelno >= logging.WARNING


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); return the exit code."""
    parser = get_args_parser()
    args = parser.parse_args(argv)
    handler = logging.StreamHandler()
    handler.addFilter(_own_or_warning)
    logging.basicConfig(  # a no-op where the caller has configured logging already
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(levelname)s %(name)s: %(message)s",
        handlers=[handler],
    )
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except (
        CLIError,
        ValueError,
        TypeError,
        FileNotFoundError,
        NotADirectoryError,
        KeyError,
        ImportError,
    ) as exc:
        # ImportError: an optional extra is missing (e.g. scikit-learn for the demo); the message says which.
        message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        logging.getLogger(__name__).debug(
            "traceback of the error below", exc_info=True
        )  # shown with -v
        print(f"antialias {args.command}: error: {message}", file=sys.stderr)
        return 2


def console_main() -> None:
    """Entry point of the ``antialias`` console script."""
    sys.exit(main())
