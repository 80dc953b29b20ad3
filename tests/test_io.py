"""antialias._io: safe reading (no code from a file, integrity first), atomic writes, output checks, run locks."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from _train_data import write_image_tree
from torch import nn

from antialias import _io
from antialias.cli import main

# ---- torch.export files ------------------------------------------------------------------------------


def _exported(tmp_path: Path) -> Path:
    class Small(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x.mean((2, 3)))

    path = tmp_path / "ok.pt2"
    torch.export.save(torch.export.export(Small(), (torch.randn(1, 3, 8, 8),)), path)
    return path


def _rewritten(
    archive: Path,
    out: Path,
    edits: dict[str, Callable[[bytes], bytes]] | None = None,
    extra: dict[str, bytes] | None = None,
) -> Path:
    """A copy of ``archive`` whose members ending in a key of ``edits`` hold what its function
    makes of them, with the ``extra`` members added (paths inside the archive's folder)."""
    edits = edits or {}
    with zipfile.ZipFile(archive) as zin, zipfile.ZipFile(out, "w") as zout:
        prefix = zin.namelist()[0].split("/")[0]
        for info in zin.infolist():
            data = zin.read(info.filename)
            for suffix, edit in edits.items():
                if info.filename.endswith(suffix):
                    data = edit(data)
            zout.writestr(info, data)
        for name, data in (extra or {}).items():
            zout.writestr(f"{prefix}/{name}", data)
    return out


def _json(edit: Callable[[Any], Any]) -> Callable[[bytes], bytes]:
    """An edit of ``_rewritten`` that edits a member's JSON."""
    return lambda data: json.dumps(edit(json.loads(data))).encode()


def _with_program(
    archive: Path,
    out: Path,
    edit: Callable[[dict], dict],
    config_edit: Callable[[dict], dict] | None = None,
) -> Path:
    """A copy of ``archive`` whose models/model.json (and weights configuration) are edited."""
    edits = {"models/model.json": _json(edit)}
    if config_edit is not None:
        edits["model_weights_config.json"] = _json(config_edit)
    return _rewritten(archive, out, edits)


@pytest.mark.slow  # torch.export of a tiny model: ~5 s
def test_pt2_with_a_pickle_payload_is_refused_without_running_it(
    tmp_path: Path, payload: object
) -> None:
    marker = tmp_path / "MARKER"
    ok = _exported(tmp_path)
    buffer = io.BytesIO()
    torch.save((payload,), buffer)
    # torch.export.load unpickles the sample inputs with weights_only=False: the classic way in.
    payload_member = {"sample_inputs/model.pt": lambda _: buffer.getvalue()}
    evil = _rewritten(ok, tmp_path / "evil.pt2", payload_member)
    with pytest.raises(_io.UnsafeFileError, match="run code"):
        _io.load_exported_program(evil)
    assert not marker.exists()
    # The same file on the command line: a one-line error, and nothing ran.
    images = write_image_tree(tmp_path / "images")
    code = main(
        [
            "eval",
            "--model",
            str(evil),
            "--data",
            str(images),
            "--metrics",
            "circular",
            "--crop",
            "8",
            "--resize",
            "8",
            "--circular-shift",
            "2",
            "--passes",
            "1",
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert code == 2 and not marker.exists()
    # A clean export still loads and runs.
    assert _io.load_exported_program(ok).module()(torch.randn(1, 3, 8, 8)).shape == (1, 2)


@pytest.mark.slow  # torch.export of a tiny model: ~5 s
@pytest.mark.parametrize(
    "path_name, use_pickle",
    [
        ("opaque_obj_0/payload", True),  # torch: pickle.loads; the member's base name is 'payload'
        ("custom_obj_0/payload", False),  # torch: TorchScript's pickle loader
        ("tensor_0/payload", True),  # torch: torch.load(weights_only=False)
    ],
)
def test_pt2_whose_configuration_names_a_pickle_is_refused_without_running_it(
    tmp_path: Path, payload: object, path_name: str, use_pickle: bool
) -> None:
    marker = tmp_path / "MARKER"
    entry = {
        "path_name": path_name,
        "is_param": False,
        "use_pickle": use_pickle,
        "tensor_meta": None,
    }

    def add_entry(config: dict) -> dict:
        config["config"]["evil"] = entry
        return config

    evil = _rewritten(
        _exported(tmp_path),
        tmp_path / "evil.pt2",
        {"model_constants_config.json": _json(add_entry)},
        {f"data/constants/{path_name}": pickle.dumps(payload)},
    )
    with pytest.raises(_io.UnsafeFileError, match=f"names a.*payload.*{path_name}.*run code"):
        _io.load_exported_program(evil)
    assert not marker.exists()
    images = write_image_tree(tmp_path / "images")
    args = ["eval", "--model", str(evil), "--data", str(images), "--metrics", "accuracy"]
    assert main([*args, "--crop", "8", "--resize", "8", "--no-progress", "--device", "cpu"]) == 2
    assert not marker.exists()


@pytest.mark.slow  # torch.export of a tiny model: ~5 s
def test_pt2_with_compiled_code_unsafe_expressions_or_the_old_format_is_refused(
    tmp_path: Path,
) -> None:
    ok = _exported(tmp_path)
    aoti = _rewritten(
        ok, tmp_path / "aoti.pt2", extra={"data/aotinductor/model/model.so": b"whatever"}
    )
    with pytest.raises(_io.UnsafeFileError, match="AOTInductor"):
        _io.load_exported_program(aoti)

    # torch parses size expressions with sympy, which evaluates them as Python.
    def with_expression(program: dict) -> dict:
        program["graph_module"]["graph"]["sym_int_values"] = {
            "s": {"as_expr": {"expr_str": "__import__('os').getcwd()", "hint": None}}
        }
        return program

    expr = _with_program(ok, tmp_path / "expr.pt2", with_expression)
    with pytest.raises(_io.UnsafeFileError, match="not plain arithmetic"):
        _io.load_exported_program(expr)

    # torch compiles the guards on input shapes into the module and runs them on every call.
    def with_guard(program: dict) -> dict:
        program["guards_code"] = ["__import__('os').getcwd() is not None"]
        return program

    guard = _with_program(ok, tmp_path / "guard.pt2", with_guard)
    with pytest.raises(_io.UnsafeFileError, match="guard that is not plain arithmetic"):
        _io.load_exported_program(guard)
    with zipfile.ZipFile(tmp_path / "old.pt2", "w") as z:
        z.writestr("x/version", "1")
    with pytest.raises(_io.CheckpointError, match="current format"):
        _io.load_exported_program(tmp_path / "old.pt2")


def _exported_with_cond(tmp_path: Path) -> Path:
    """An export with a subgraph call (``torch.cond``) and a keyword input ``k``."""

    class Branchy(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 2)

        def forward(self, x: torch.Tensor, *, k: torch.Tensor) -> torch.Tensor:
            y = torch.cond(x.sum() > 0, lambda t: t + 1, lambda t: t - 1, (x,))
            return self.fc((y * k).mean((2, 3)))

    path = tmp_path / "cond.pt2"
    x = torch.randn(1, 3, 8, 8)
    torch.export.save(torch.export.export(Branchy(), (x,), {"k": x}), path)
    return path


def _code(marker: Path) -> str:
    """Python that creates ``marker``, written without dots or quotes (which names would split on)."""
    source = f"open({str(marker)!r}, 'w')".encode()
    return "exec(bytes((" + ",".join(map(str, source)) + ",)))"


def _renamed(node: object, old: str, new: str) -> object:
    """``node`` (JSON) with every string ``old``, value or key, replaced by ``new``."""
    if isinstance(node, dict):
        return {(new if k == old else k): _renamed(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_renamed(v, old, new) for v in node]
    return new if node == old else node


def _nodes(program: dict, target: str) -> list[dict]:
    return [n for n in program["graph_module"]["graph"]["nodes"] if target in n["target"]]


def _keyword_input(program: dict, name: str) -> dict:
    signature = program["graph_module"]["module_call_graph"][0]["signature"]
    spec = json.loads(signature["in_spec"])
    spec[1]["children_spec"][1]["context"] = json.dumps([name])
    signature["in_spec"] = json.dumps(spec)
    return program


def _keyword_argument(program: dict, name: str) -> dict:
    argument = _nodes(program, "higher_order.cond")[0]["inputs"][-1]
    argument["kind"], argument["name"] = 2, name
    return program


def _forward_arg_names(program: dict, name: str) -> dict:
    program["graph_module"]["module_call_graph"][0]["signature"]["forward_arg_names"] = [name]
    return program


# What torch's reader does with each payload when nothing checks it: the input's name becomes a
# parameter of the generated forward (its default runs on load); the parameter's path and the
# subgraph's name are read with getattr(self, "<name>") and the keyword argument is written as
# ``<name> = <value>`` (run by module() or on the first call). Node names, the forward's argument
# names and the keyword inputs' keys reach the source too (FX renames nodes; these payloads end in
# a syntax error or torch's input check, others need not).
_CODE_IN_NAMES = {
    "input name": (False, "graph.inputs.as_tensor.name", lambda p, c: _renamed(p, "x", f"x={c}")),
    "node name": (
        False,
        "nodes.outputs.as_tensor.name",
        lambda p, c: _renamed(p, "mean", f"mean = {c}\n    mean"),
    ),
    "parameter path": (
        False,
        "model_weights_config.json names an attribute",
        lambda p, c: _renamed(p, "fc.weight", f'fc.a") if {c} else getattr(self, "b'),
    ),
    "subgraph name": (
        True,
        "as_graph.name",
        lambda p, c: _renamed(p, "true_graph_0", f'true_graph_0") if {c} else getattr(self, "t'),
    ),
    "keyword argument": (
        True,
        "nodes.inputs.name",
        lambda p, c: _keyword_argument(p, f"operands = {c}, z"),
    ),
    "forward argument": (
        False,
        "forward_arg_names",
        lambda p, c: _forward_arg_names(p, f"x={c}"),
    ),
    "keyword input": (True, "in_spec", lambda p, c: _keyword_input(p, f"k':{c},'k")),
}


@pytest.mark.slow  # torch.export of a tiny model: ~5 s
@pytest.mark.parametrize("field", list(_CODE_IN_NAMES))
def test_pt2_with_code_in_a_name_torch_writes_into_generated_source_is_refused(
    tmp_path: Path, field: str
) -> None:
    marker = tmp_path / "MARKER"
    with_cond, where, edit = _CODE_IN_NAMES[field]
    ok = _exported_with_cond(tmp_path) if with_cond else _exported(tmp_path)
    code = _code(marker)
    # The weights are keyed by the parameter's path: their configuration is edited alike.
    config_edit = (lambda c: edit(c, code)) if field == "parameter path" else None
    evil = _with_program(ok, tmp_path / "evil.pt2", lambda p: edit(p, code), config_edit)
    with pytest.raises(
        _io.UnsafeFileError, match=f"{where}.*not (a Python identifier|a dotted path)"
    ):
        _io.load_exported_program(evil)
    assert not marker.exists()
    # The archive it was made from loads and runs.
    x = torch.randn(1, 3, 8, 8)
    module = _io.load_exported_program(ok).module()
    assert module(x, **({"k": x} if with_cond else {})).shape == (1, 2)
    assert not marker.exists()


@pytest.mark.slow  # torch.export of a tiny model: ~5 s
def test_pt2_with_a_keyword_as_a_name_is_refused_at_load(tmp_path: Path) -> None:
    # A keyword matches the identifier pattern but makes FX's generated source a syntax error, which
    # torch only warns about (the module then has an empty forward): refused when read instead.
    ok = _exported(tmp_path)
    bad = _with_program(ok, tmp_path / "keyword.pt2", lambda p: _renamed(p, "x", "lambda"))
    with pytest.raises(_io.UnsafeFileError, match="'lambda', not a Python identifier"):
        _io.load_exported_program(bad)


@pytest.mark.slow  # torch.export of a tiny model: ~5 s
def test_pt2_with_the_names_torch_gives_loads(tmp_path: Path) -> None:
    # Submodules named by numbers and hyphens, a buffer, a tensor constant, extra positional
    # arguments and a keyword input: all within the rule on names.
    class Named(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.blocks = nn.ModuleDict({"layer-1": nn.Linear(3, 3), "2": nn.Linear(3, 2)})
            self.register_buffer("scale", torch.full((3,), 2.0))
            self.const = torch.randn(3)

        def forward(
            self, x: torch.Tensor, *rest: torch.Tensor, **extra: torch.Tensor
        ) -> torch.Tensor:
            y = self.blocks["layer-1"](x.mean((2, 3)) * self.scale + self.const)
            return self.blocks["2"](y + rest[0].sum() + extra["k"].sum())

    model, x = Named(), torch.randn(1, 3, 8, 8)
    path = tmp_path / "named.pt2"
    torch.export.save(torch.export.export(model, (x, x), {"k": x}), path)
    module = _io.load_exported_program(path).module()
    assert torch.allclose(module(x, x, k=x), model(x, x, k=x))


@pytest.mark.slow  # torch.export of a tiny model: ~5 s
def test_pt2_free_text_fields_stay_text(tmp_path: Path) -> None:
    # Stack traces, module stacks and other metadata are never written into generated source as
    # code (a carriage return would end a comment line): the archive loads, runs, and nothing ran.
    marker = tmp_path / "MARKER"
    code = _code(marker)

    def edit(program: dict) -> dict:
        node = _nodes(program, "aten.mean")[0]
        node["metadata"] = {
            "stack_trace": f'File "a\r    {code}\r.py", line 1, in forward\n    y\r    {code}\r',
            "nn_module_stack": f"L__self__,\r    {code}\r,__main__.Small",
            "torch_fn": f"mean_1;{code}",
            "custom": json.dumps({"k": f"\r    {code}\r"}),
        }
        program["range_constraints"] = {code: {"min_val": 1, "max_val": 3}}
        program["graph_module"]["metadata"] = {"custom": json.dumps({"a": code})}
        program["graph_module"]["module_call_graph"][1]["fqn"] = code
        return program

    planted = _with_program(_exported(tmp_path), tmp_path / "planted.pt2", edit)
    program = _io.load_exported_program(planted)
    assert program.module()(torch.randn(1, 3, 8, 8)).shape == (1, 2)
    program.graph_module.print_readable(print_output=False)
    assert not marker.exists()

    # String arguments are written as Python literals (repr): a quote cannot end them.
    def strings(program: dict) -> dict:
        argument = {"as_strings": [f"'); {code}; ('", f'"); {code}; ("', f"\r    {code}"]}
        _nodes(program, "aten.mean")[0]["inputs"][1]["arg"] = argument
        return program

    planted = _with_program(_exported(tmp_path), tmp_path / "strings.pt2", strings)
    with pytest.raises(RuntimeError, match="aten::mean"):  # a list of strings is no dimension list
        _io.load_exported_program(planted).module()(torch.randn(1, 3, 8, 8))
    assert not marker.exists()


@pytest.mark.slow  # torch.export of a tiny model: ~5 s
def test_pt2_truncated_or_with_a_wrong_hash_is_damaged(tmp_path: Path) -> None:
    ok = _exported(tmp_path)
    truncated = tmp_path / "truncated.pt2"
    truncated.write_bytes(ok.read_bytes()[:-100])
    with pytest.raises(_io.CheckpointError, match="truncated.pt2.*damaged"):
        _io.load_exported_program(truncated)
    _io.write_hash_record(ok)
    flipped = bytearray(ok.read_bytes())
    flipped[len(flipped) // 2] ^= 1
    ok.write_bytes(bytes(flipped))
    with pytest.raises(_io.CheckpointError, match="ok.pt2.*damaged"):
        _io.load_exported_program(ok)


@pytest.mark.slow  # torch.export of a tiny model: ~5 s
def test_a_genuine_pt2_is_evaluated_in_eval_mode(tmp_path: Path) -> None:
    from antialias.models import build_model

    model = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.BatchNorm2d(4),
        nn.Dropout(0.5),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
    )
    model[1].running_mean.fill_(0.5)
    x = torch.randn(2, 3, 8, 8)
    # Exported in training mode (the default): batch norm uses batch statistics, dropout drops.
    path = tmp_path / "trained.pt2"
    batch = {0: torch.export.Dim("batch", min=1, max=64)}
    torch.export.save(torch.export.export(model, (x,), dynamic_shapes=(batch,)), path)
    loaded = build_model(str(path))
    loaded.eval()  # an exported module refuses eval(); the loaded model accepts it
    with pytest.raises(ValueError, match="trained.pt2.*exported program.*cannot be trained"):
        loaded.train()
    with torch.no_grad():
        assert torch.allclose(loaded(x), model.eval()(x), atol=1e-6)
    images = write_image_tree(tmp_path / "images")
    output = tmp_path / "result.json"
    args = ["eval", "--model", str(path), "--data", str(images), "--metrics", "accuracy"]
    args += ["--crop", "8", "--resize", "8", "--no-progress", "--device", "cpu"]
    assert main([*args, "--output", str(output), "--num-classes", "4"]) == 0
    result = json.loads(output.read_text())
    assert 0.0 <= next(iter(result["models"].values()))["metrics"]["accuracy"]["top1"] <= 1.0
    # Decomposed, training-mode batch norm has no eval-mode switch: refused in one line.
    decomposed = tmp_path / "decomposed.pt2"
    torch.export.save(torch.export.export(model.train(), (x,)).run_decompositions(), decomposed)
    with pytest.raises(ValueError, match="exported in training mode.*after model.eval"):
        build_model(str(decomposed))


# ---- torch files and plain pickles -------------------------------------------------------------------


def test_safe_torch_load_refuses_a_payload_and_checks_the_expected_hash(
    tmp_path: Path, payload: object
) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"w": torch.zeros(1), "x": payload}, path)
    with pytest.raises(_io.UnsafeFileError, match="could run code.*nothing from it was run"):
        _io.safe_torch_load(path, what="checkpoint")
    assert not (tmp_path / "MARKER").exists()
    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(2)}, good)
    digest = hashlib.sha256(good.read_bytes()).hexdigest()
    assert torch.equal(_io.safe_torch_load(good, expected_sha256=digest[:8])["w"], torch.ones(2))
    wrong = "0" * 8 if not digest.startswith("0" * 8) else "1" * 8
    with pytest.raises(_io.CheckpointError, match=f"does not start with '{wrong}'"):
        _io.safe_torch_load(good, expected_sha256=wrong)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _io.safe_torch_load(tmp_path / "missing.pt")


def test_restricted_pickle_load_builds_plain_data_only(payload: object, tmp_path: Path) -> None:
    data = {"data": [1, 2], "labels": b"ab"}
    assert _io.restricted_pickle_load(io.BytesIO(pickle.dumps(data))) == data
    with pytest.raises(_io.UnsafeFileError, match="io.open"):
        _io.restricted_pickle_load(io.BytesIO(pickle.dumps(payload)))
    assert not (tmp_path / "MARKER").exists()


# ---- atomic writes and recorded hashes ---------------------------------------------------------------


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = _io.atomic_write_text(tmp_path / "result.json", "old")

    def fail(f: object) -> None:
        f.write(b"half")  # type: ignore[attr-defined]
        raise RuntimeError("disk full (test)")

    with pytest.raises(RuntimeError, match="disk full"):
        _io.atomic_write(path, fail)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_temporaries_of_killed_writers_are_removed(tmp_path: Path) -> None:
    dead = 2**22 + 12345  # above the usual pid_max: no such process
    stale = tmp_path / f".result.json.{dead}.{'0' * 32}.tmp"
    mine = tmp_path / f".result.json.{os.getpid()}.{'1' * 32}.tmp"  # a writer still at work
    stale.write_text("x")
    mine.write_text("x")
    _io.atomic_write_text(tmp_path / "result.json", "new")
    assert not stale.exists() and mine.exists() and (tmp_path / "result.json").read_text() == "new"


def test_atomic_save_records_the_hash_that_verify_file_checks(tmp_path: Path) -> None:
    path = _io.atomic_save({"w": torch.arange(4.0)}, tmp_path / "c.pt", record_hash=True)
    assert _io.read_hash_record(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert _io.hash_record_path(path) == tmp_path / "c.pt.sha256"
    _io.verify_file(path)
    _io.hash_record_path(path).write_text("0" * 64 + "  c.pt\n")
    with pytest.raises(_io.CheckpointError, match="differs from the one recorded"):
        _io.verify_file(path)


def test_json_safe_turns_non_finite_numbers_and_tensors_into_json() -> None:
    value = {
        "a": float("nan"),
        "b": [1.0, float("inf")],
        "c": torch.tensor([0.5, float("-inf")]),
        1: (2,),
    }
    assert _io.json_safe(value) == {"a": None, "b": [1.0, None], "c": [0.5, None], "1": [2]}


# ---- output paths and run locks ------------------------------------------------------------------------


def test_check_output_path_refuses_before_any_work(tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "a_dir").mkdir()
    assert (
        _io.check_output_path(tmp_path / "new" / "out.json", kind="file", what="--output")
        == tmp_path / "new" / "out.json"
    )
    assert not (tmp_path / "new").exists()  # creates nothing
    with pytest.raises(ValueError, match="is a folder; expected a file name"):
        _io.check_output_path(tmp_path / "a_dir", kind="file", what="--output")
    with pytest.raises(ValueError, match="is a file; expected a folder"):
        _io.check_output_path(tmp_path / "a_file", kind="dir", what="--output-dir")
    with pytest.raises(ValueError, match="is not a folder"):
        _io.check_output_path(tmp_path / "a_file" / "x.json", kind="file", what="--output")
    with pytest.raises(ValueError, match="same file as --weights file"):
        _io.check_output_path(
            tmp_path / "a_file",
            kind="file",
            what="--output",
            inputs=[("--weights file", tmp_path / "a_file")],
        )
    with pytest.raises(ValueError, match="kind must be 'file' or 'dir'"):
        _io.check_output_path(tmp_path / "x", kind="pipe", what="--output")  # type: ignore[arg-type]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_the_lock_is_released_when_its_holder_dies(tmp_path: Path) -> None:
    pid = os.fork()
    if pid == 0:  # the child takes the lock and dies without releasing it
        _io.RunLock(tmp_path).acquire()
        os._exit(0)
    os.waitpid(pid, 0)
    with _io.RunLock(tmp_path) as lock:  # a dead holder leaves no stale lock
        assert lock.held
    assert not lock.held


@pytest.mark.parametrize("text", ["a b c", "hello", "0"])
def test_a_text_file_is_not_a_pytorch_file_in_one_line(tmp_path, text):
    from antialias._io import CheckpointError, safe_torch_load

    path = tmp_path / "weights.txt"
    path.write_text(text)  # torch.load: "pop from empty list", "Unsupported operand 48"...
    with pytest.raises(CheckpointError) as info:
        safe_torch_load(path, what="weights")
    message = str(info.value)
    assert "neither a zip archive nor a pickle" in message and "\n" not in message
    assert "pop from" not in message and "operand" not in message
