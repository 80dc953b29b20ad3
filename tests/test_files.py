"""``antialias.files``: the result files of applications (strict JSON written atomically, output paths checked)."""

import json
import math

import pytest
import torch

from antialias.files import check_output_path, write_json


def _strict(text: str):
    def refuse(name: str):
        raise AssertionError(f"not strict JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def test_write_json_is_strict_and_creates_the_folder(tmp_path):
    path = tmp_path / "new" / "deeper" / "results.json"
    written = write_json(
        path, {"nan": math.nan, "inf": -math.inf, "t": torch.tensor([1.5, math.nan]), 3: (1, 2)}
    )
    assert written == path and path.read_text().endswith("}\n")
    assert _strict(path.read_text()) == {"nan": None, "inf": None, "t": [1.5, None], "3": [1, 2]}


def test_write_json_leaves_the_old_file_when_it_fails(tmp_path):
    path = tmp_path / "results.json"
    write_json(path, {"run": 1})
    with pytest.raises(TypeError, match="not JSON serializable"):
        write_json(path, {"run": object()})
    assert _strict(path.read_text()) == {"run": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]  # no temporary file left


def test_check_output_path_refuses_an_input_and_a_folder(tmp_path):
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"x")
    with pytest.raises(ValueError, match="is the same file as --weights file"):
        check_output_path(
            weights, kind="file", what="--output", inputs=[("--weights file", str(weights))]
        )
    with pytest.raises(ValueError, match="is a folder; expected a file name"):
        check_output_path(tmp_path, kind="file", what="--output")
    assert (
        check_output_path(tmp_path / "a" / "r.json", kind="file", what="--output")
        == tmp_path / "a" / "r.json"
    )
    assert not (tmp_path / "a").exists()  # checked, nothing created
