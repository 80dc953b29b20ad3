"""``antialias info`` and ``--version``, through cli/__init__.py and ``python -m antialias`` (__main__.py)."""

import argparse
import json
import subprocess
import sys

import antialias
from antialias.cli import get_args_parser, main


def test_version(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"antialias {antialias.__version__}"


def test_info_json(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["antialias"] == antialias.__version__
    assert "BlurPool2d" in info["layers"] and "MaxBlurPool3d" in info["layers"]
    assert "blur" in info["downsample_methods"]
    assert isinstance(info["models"], list)


def test_info_table(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "torch" in out and "BlurPool2d" in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "usage: antialias" in capsys.readouterr().out


def test_console_script_runs():
    out = subprocess.run(
        [sys.executable, "-m", "antialias", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"antialias {antialias.__version__}"


def test_missing_optional_extra_is_one_line(monkeypatch, capsys, tmp_path):
    """A missing extra (scikit-learn for the demo) is reported in one line, exit code 2, no traceback."""
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("sklearn"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    assert (
        main(
            [
                "demo",
                "--seeds",
                "1",
                "--epochs",
                "1",
                "--output",
                str(tmp_path / "demo"),
                "--no-progress",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert err.startswith("antialias demo: error: the digits demo needs scikit-learn")
    assert "Traceback" not in err


def test_every_option_says_what_it_does_and_its_default():
    # Every option of every command has a help text; one that takes a value names its default
    # (argparse adds "(default: X)" unless X is None: then the text says it).
    parser = get_args_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    undocumented = []
    for name, sub in commands.items():
        for action in sub._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            text = sub.formatter_class("x")._expand_help(action) if action.help else ""
            flag = action.nargs == 0
            if not text or (not flag and "default" not in text and not action.required):
                undocumented.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert not undocumented, undocumented


def test_info_lists_layers_methods_and_constants_apart(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    constants = info["layer_constants"]
    assert {"BACKENDS", "NORMS", "WAVELETS", "PAD_MODES"} <= set(constants)
    assert not set(constants) & set(info["layers"]), info["layers"]
    assert all(name[0].isupper() and not name.isupper() for name in info["layers"])
    assert constants["PAD_MODES"] == ["reflect", "replicate", "zeros", "circular"]
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    layers_line = next(line for line in out.splitlines() if line.startswith("layers"))
    assert "BlurPool2d" in layers_line and "WAVELETS" not in layers_line
    assert "layer constants" in out and "haar, db2, db3" in out


def test_third_party_info_logs_stay_quiet_and_own_logs_show():
    # In a fresh process (pytest configures logging itself): matplotlib's "generated new
    # fontManager" is an INFO record of a third-party logger; the command's own INFO is kept.
    script = (
        "import logging, sys\n"
        "import antialias.cli.info as info\n"
        "run = info.run\n"
        "def noisy(args):\n"
        "    logging.getLogger('matplotlib.font_manager').info('generated new fontManager')\n"
        "    logging.getLogger('matplotlib').warning('a real problem')\n"
        "    logging.getLogger('antialias.cli.info').info('own message')\n"
        "    return run(args)\n"
        "info.run = noisy\n"
        "from antialias.cli import main\n"
        "sys.exit(main(['info']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert "fontManager" not in done.stderr
    assert "own message" in done.stderr and "a real problem" in done.stderr
