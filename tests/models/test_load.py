"""antialias.models._load: downloads through torch.hub's cache, hashes, refused pickles, broken files, mismatches."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import socket
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

import antialias.models as zoo
from antialias._io import UnsafeFileError, write_hash_record
from antialias.models import (
    CheckpointError,
    WeightsDownloadError,
    _load,
    read_state_dict,
)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _publish(
    model: nn.Module, folder: Path, stem: str, *, official: bool = True
) -> tuple[Path, str]:
    """Save ``model``'s weights as ``<stem>-<hash8>.pth`` in ``folder`` (torch.hub's naming)."""
    tmp = folder / "tmp.pth"
    torch.save({"state_dict": model.state_dict()} if official else model.state_dict(), tmp)
    digest = _sha256(tmp)
    path = folder / f"{stem}-{digest[:8]}.pth"
    tmp.rename(path)
    return path, digest


@pytest.fixture(scope="module")
def small_resnet() -> nn.Module:
    """A resnet18 with 10 classes and k=5, with random (non-default) BN statistics."""
    torch.manual_seed(0)
    model = zoo.resnet18(num_classes=10, filter_size=5)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _same_weights(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- downloads -------------------------------------------------------------------------------------


def test_download_from_url_into_the_hub_cache(
    small_resnet: nn.Module, hub_dir: Path, http_server: tuple[str, Path]
) -> None:
    base, served = http_server
    path, digest = _publish(small_resnet, served, "resnet18_lpf5")
    url = f"{base}/{path.name}"
    # Our (torchvision's) layout has no blur buffers, so it cannot tell the filter size: pass it.
    model = zoo.resnet18(weights=url, num_classes=10, filter_size=5, progress=False)
    assert _same_weights(model, small_resnet)
    cached = hub_dir / "checkpoints" / path.name
    assert cached.is_file() and _sha256(cached) == digest
    # The cache is used from now on: the server may go away.
    path.unlink()
    again = zoo.get_model("resnet18", weights=url, num_classes=10, filter_size=5, progress=False)
    assert _same_weights(again, small_resnet)


def test_download_hash_mismatch_is_refused_and_not_cached(
    small_resnet: nn.Module, hub_dir: Path, http_server: tuple[str, Path]
) -> None:
    base, served = http_server
    path, digest = _publish(small_resnet, served, "resnet18_lpf5")
    wrong = "0" * 8 if not digest.startswith("0" * 8) else "1" * 8
    bad = served / f"resnet18_lpf5-{wrong}.pth"
    path.rename(bad)
    with pytest.raises(CheckpointError, match=f"SHA-256 does not start with '{wrong}'"):
        zoo.resnet18(weights=f"{base}/{bad.name}", num_classes=10, filter_size=5, progress=False)
    assert not (hub_dir / "checkpoints" / bad.name).exists()
    assert not any((hub_dir / "checkpoints").iterdir())  # no partial download left behind


def test_catalog_download_goes_through_the_mirror_and_checks_the_catalog_hash(
    small_resnet: nn.Module,
    hub_dir: Path,
    http_server: tuple[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The catalog entry's real hash prefix is checked: our test file is not the official one."""
    base, served = http_server
    entry = zoo.ResNet18_Weights.LPF5
    torch.save({"state_dict": small_resnet.state_dict()}, served / entry.file_name)
    monkeypatch.setenv("ANTIALIAS_WEIGHTS_MIRROR", base)
    with pytest.raises(
        CheckpointError,
        match=re.escape(f"{base}/{entry.file_name}")
        + f".*does not start with '{entry.sha256_prefix}'",
    ):
        zoo.resnet18(weights="LPF5", progress=False)


def test_offline_error_names_the_url_and_the_cache_path(hub_dir: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/resnet18_lpf4-0123abcd.pth"
    with pytest.raises(WeightsDownloadError) as info:
        zoo.resnet18(weights=url, progress=False)
    message = str(info.value)
    assert url in message
    assert str(hub_dir / "checkpoints" / "resnet18_lpf4-0123abcd.pth") in message
    assert "ANTIALIAS_WEIGHTS_MIRROR" in message
    assert isinstance(info.value, ConnectionError) and isinstance(info.value, ValueError)


def test_offline_catalog_entry_says_where_to_put_the_file(
    hub_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANTIALIAS_WEIGHTS_MIRROR", f"http://127.0.0.1:{_closed_port()}/weights")
    entry = zoo.MobileNet_V2_Weights.DEFAULT
    with pytest.raises(
        WeightsDownloadError,
        match="put it at " + re.escape(str(hub_dir / "checkpoints" / entry.file_name)),
    ):
        zoo.mobilenet_v2(weights=entry, progress=False)


def test_file_placed_by_hand_in_the_cache_loads_offline(
    small_resnet: nn.Module, hub_dir: Path, tmp_path: Path
) -> None:
    (hub_dir / "checkpoints").mkdir(parents=True)
    path, _ = _publish(small_resnet, hub_dir / "checkpoints", "resnet18_lpf5")
    url = f"http://127.0.0.1:{_closed_port()}/{path.name}"  # nobody listens: only the cache can serve it
    assert _same_weights(zoo.resnet18(weights=url, num_classes=10), small_resnet)
    # A file in the cache that does not match its hash is never used: it is deleted (a plain torch.hub
    # call would trust it) and fetched again, which offline is the usual one-line error.
    wrong = hub_dir / "checkpoints" / "resnet18_lpf5-00000000.pth"
    path.rename(wrong)
    with pytest.raises(WeightsDownloadError, match="put it at"):
        zoo.resnet18(weights=f"http://127.0.0.1:{_closed_port()}/{wrong.name}", num_classes=10)
    assert not wrong.exists()


# ---- unsafe and broken files -----------------------------------------------------------------------


def _evil_file(path: Path, payload: object, *, legacy: bool = False) -> Path:
    """A weights file with the ``payload`` fixture planted in it."""
    torch.save(
        {"state_dict": {"fc.weight": torch.zeros(2, 2)}, "x": payload},
        path,
        _use_new_zipfile_serialization=not legacy,
    )
    return path


@pytest.mark.parametrize("legacy", [False, True])
def test_malicious_pickle_is_refused_and_nothing_runs(
    tmp_path: Path, legacy: bool, payload: object
) -> None:
    marker = tmp_path / "MARKER"
    path = _evil_file(tmp_path / "evil.pth", payload, legacy=legacy)
    with pytest.raises(CheckpointError, match="refusing to load.*could run code"):
        zoo.resnet18(weights=path, num_classes=10)
    assert not marker.exists()
    # Sanity check of the test itself: a plain unpickler does run the payload.
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_raw_pickle_file_is_refused(tmp_path: Path, payload: object) -> None:
    marker = tmp_path / "MARKER"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(payload))
    with pytest.raises(CheckpointError, match="refusing|truncated or corrupt"):
        zoo.resnet18(weights=path)
    assert not marker.exists()


@pytest.mark.parametrize("function", [os.system, eval, getattr])
def test_a_code_bearing_pickle_is_called_so_and_weights_only_is_never_suggested(
    tmp_path: Path, function: object
) -> None:
    class Call:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (function, ("0",))

    path = tmp_path / "evil.pth"
    torch.save({"w": torch.zeros(1), "x": Call()}, path)
    with pytest.raises(UnsafeFileError, match="code-bearing pickled Python objects") as info:
        zoo.resnet18(weights=path)
    message = str(info.value)
    assert "weights_only" not in message and "truncated" not in message
    assert "\n" not in message


@pytest.mark.parametrize("legacy", [False, True])
def test_truncated_file(small_resnet: nn.Module, tmp_path: Path, legacy: bool) -> None:
    path = tmp_path / "cut.pth"
    torch.save(
        {"state_dict": small_resnet.state_dict()}, path, _use_new_zipfile_serialization=not legacy
    )
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        zoo.resnet18(weights=path, num_classes=10)


def test_corrupt_and_empty_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(os.urandom(4096))
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        zoo.resnet18(weights=garbage)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(CheckpointError, match="truncated or corrupt"):
        zoo.resnet18(weights=empty)


def test_file_without_a_state_dict(tmp_path: Path) -> None:
    path = tmp_path / "numbers.pth"
    torch.save({"epoch": 3, "lr": 0.1}, path)
    with pytest.raises(CheckpointError, match="holds no state dict"):
        zoo.resnet18(weights=path)


def test_missing_file_and_unknown_name(tmp_path: Path) -> None:
    with pytest.raises(
        FileNotFoundError,
        match=r"neither an existing file, a URL, nor a weights name of resnet18 \(LPF4_FINETUNE",
    ):
        zoo.resnet18(weights=str(tmp_path / "nope.pth"))
    with pytest.raises(TypeError, match="weights must be"):
        zoo.resnet18(weights=12)


def test_torchvision_style_weights_load_through_the_loader(hub_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "w.pth"
    torch.save({"fc.weight": torch.ones(2, 3)}, source)
    named = tmp_path / f"tiny-{_sha256(source)[:8]}.pth"
    source.rename(named)
    state = _load.read_torchvision_state_dict(named.as_uri(), progress=False)
    assert torch.equal(state["fc.weight"], torch.ones(2, 3))
    assert (hub_dir / "checkpoints" / named.name).is_file()  # shared with torch.hub, hash-named


def test_refused_download_is_deleted_and_never_left_in_the_hub_cache(
    hub_dir: Path, http_server: tuple[str, Path], tmp_path: Path, payload: object
) -> None:
    base, root = http_server
    marker = tmp_path / "MARKER"
    evil = _evil_file(root / "model-00000000.pth", payload)
    if _sha256(evil).startswith("00000000"):  # pragma: no cover - one chance in 4 billion
        pytest.skip("the payload's hash happens to start with 00000000")
    with pytest.raises(CheckpointError, match="deleted, not cached"):
        read_state_dict(f"{base}/model-00000000.pth", progress=False)
    leftovers = [p for p in hub_dir.rglob("*") if p.is_file()]
    assert leftovers == [] and not marker.exists()


def test_a_bad_file_already_in_the_cache_is_deleted_and_fetched_again(
    hub_dir: Path, http_server: tuple[str, Path], tmp_path: Path, payload: object
) -> None:
    base, root = http_server
    good = root / "w.pth"
    torch.save({"w": torch.ones(2)}, good)
    name = f"w-{_sha256(good)[:8]}.pth"
    good.rename(root / name)
    marker = tmp_path / "MARKER"
    (hub_dir / "checkpoints").mkdir(parents=True)
    _evil_file(hub_dir / "checkpoints" / name, payload)
    state = read_state_dict(f"{base}/{name}", progress=False)
    assert torch.equal(state["w"], torch.ones(2)) and not marker.exists()
    assert _sha256(hub_dir / "checkpoints" / name) == _sha256(root / name)


def test_the_cache_is_keyed_by_url_not_by_file_name(
    hub_dir: Path, http_server: tuple[str, Path]
) -> None:
    base, root = http_server
    for folder, value in (("a", 1.0), ("b", 2.0)):
        (root / folder).mkdir()
        torch.save({"w": torch.full((2,), value)}, root / folder / "model.pth")
    a = read_state_dict(f"{base}/a/model.pth", progress=False)
    b = read_state_dict(f"{base}/b/model.pth", progress=False)
    assert a["w"].tolist() == [1.0, 1.0] and b["w"].tolist() == [2.0, 2.0]
    assert _load.cache_path(f"{base}/a/model.pth") != _load.cache_path(f"{base}/b/model.pth")
    assert not (hub_dir / "checkpoints" / "model.pth").exists()  # not where torch.hub looks by name


def test_weights_file_with_a_payload_is_refused_with_a_clear_reason(
    tmp_path: Path, payload: object
) -> None:
    marker = tmp_path / "MARKER"
    for legacy in (False, True):
        path = _evil_file(tmp_path / f"evil{int(legacy)}.pth", payload, legacy=legacy)
        with pytest.raises(UnsafeFileError, match="could run code.*nothing from it was run"):
            read_state_dict(path)
    assert not marker.exists()


def test_safetensors_weights_timm_style_are_read_without_pickle(tmp_path: Path) -> None:
    safetensors = pytest.importorskip("safetensors.torch")
    path = tmp_path / "model.safetensors"
    safetensors.save_file({"fc.weight": torch.ones(2, 3)}, str(path))
    assert torch.equal(read_state_dict(path)["fc.weight"], torch.ones(2, 3))
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a safetensors file"):
        read_state_dict(path)


def _safetensors_file(path: Path, header: dict, data: bytes) -> Path:
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


def test_safetensors_with_a_record_is_hash_checked_and_its_header_always(tmp_path: Path) -> None:
    safetensors = pytest.importorskip("safetensors.torch")
    path = tmp_path / "w.safetensors"
    safetensors.save_file({"w": torch.arange(100.0)}, str(path))
    write_hash_record(path)
    assert torch.equal(read_state_dict(path)["w"], torch.arange(100.0))
    data = bytearray(path.read_bytes())
    data[-10] ^= 1  # a bit of one weight: the header is intact, only the record can tell
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=r"w.safetensors.*damaged: its SHA-256"):
        read_state_dict(path)
    # The structure is checked with or without a record.
    f32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    cases = {
        "past the end": (None, b""),
        "not JSON": (b"{not json", b""),
        "unknown dtype": ({"a": {**f32, "dtype": "F99"}}, bytes(8)),
        "spans 4 bytes, expected 8": ({"a": {**f32, "data_offsets": [0, 4]}}, bytes(4)),
        "overlaps": ({"a": f32, "b": {**f32, "data_offsets": [4, 12]}}, bytes(12)),
        "gap": ({"a": {**f32, "data_offsets": [4, 12]}}, bytes(12)),
        "file holds 12 bytes": ({"a": f32}, bytes(12)),
        "shape that is not": ({"a": {**f32, "shape": [-2]}}, bytes(8)),
    }
    for i, (fault, (header, payload)) in enumerate(cases.items()):
        bad = tmp_path / f"bad{i}.safetensors"
        if header is None:
            bad.write_bytes((1000).to_bytes(8, "little") + b"{}")
        elif isinstance(header, bytes):
            bad.write_bytes(len(header).to_bytes(8, "little") + header)
        else:
            _safetensors_file(bad, header, payload)
        with pytest.raises(CheckpointError, match=f"bad{i}.safetensors.*damaged.*{fault}"):
            read_state_dict(bad)


def test_a_flipped_byte_in_tensor_data_is_caught_by_the_zip_crc(tmp_path: Path) -> None:
    path = tmp_path / "w.pt"
    torch.save({"w": torch.arange(1000.0)}, path)
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.filename.endswith("data/0"))
    offset = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 400
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))
    assert not torch.equal(
        torch.load(path, weights_only=True)["w"], torch.arange(1000.0)
    )  # torch reads it silently
    with pytest.raises(CheckpointError, match="CRC-32"):
        read_state_dict(path)


# ---- checkpoints that do not fit ---------------------------------------------------------------------


def test_wrong_architecture_lists_the_differing_keys(
    small_resnet: nn.Module, tmp_path: Path
) -> None:
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": small_resnet.state_dict()}, path)
    with pytest.raises(CheckpointError) as info:
        zoo.resnet34(weights=path, num_classes=10, filter_size=5)
    message = str(info.value)
    assert "does not fit the resnet34 model" in message
    assert "missing keys: layer1.2.conv1.weight" in message
    with pytest.raises(
        CheckpointError,
        match=r"missing keys: .*shape mismatches: layer1.0.conv1.weight: checkpoint \(64, 64, 3, 3\) vs model \(64, 64, 1, 1\)",
    ):
        zoo.resnet50(weights=path, num_classes=10, filter_size=5)


def test_wrong_num_classes_lists_the_shapes(small_resnet: nn.Module, tmp_path: Path) -> None:
    path = tmp_path / "r18.pth"
    torch.save(small_resnet.state_dict(), path)
    with pytest.raises(
        CheckpointError, match=r"fc.weight: checkpoint \(10, 512\) vs model \(1000, 512\)"
    ):
        zoo.resnet18(weights=path, filter_size=5)


# ---- formats ---------------------------------------------------------------------------------------------


def test_plain_state_dict_module_prefix_and_legacy_format(
    small_resnet: nn.Module, tmp_path: Path
) -> None:
    plain = tmp_path / "plain.pth"
    torch.save(small_resnet.state_dict(), plain, _use_new_zipfile_serialization=False)
    assert _same_weights(zoo.resnet18(weights=plain, num_classes=10, filter_size=5), small_resnet)
    wrapped = (
        tmp_path / "ddp.pth"
    )  # as saved from DistributedDataParallel, inside a training checkpoint
    torch.save(
        {"epoch": 90, "model": {f"module.{k}": v for k, v in small_resnet.state_dict().items()}},
        wrapped,
    )
    assert _same_weights(zoo.resnet18(weights=wrapped, num_classes=10, filter_size=5), small_resnet)
    in_memory = zoo.resnet18(
        weights={"state_dict": small_resnet.state_dict()}, num_classes=10, filter_size=5
    )
    assert _same_weights(in_memory, small_resnet)


def _described(tmp_path: Path, **meta: object) -> Path:
    """A weights file as ``antialias train`` writes it: the state dict and the model's description."""
    model = zoo.get_model("resnet18", filter_size=4, num_classes=10)
    path = tmp_path / "weights.pt"
    description = {"arch": "resnet18", "num_classes": 10, "filter_size": 4, **meta}
    torch.save({"state_dict": model.state_dict(), "antialias": description}, path)
    return path


def test_our_file_refuses_another_filter_size_as_catalog_weights_do(tmp_path: Path) -> None:
    path = _described(tmp_path)
    with pytest.raises(ValueError, match="trained with filter_size=4, got filter_size=5"):
        zoo.get_model("resnet18", filter_size=5, weights=str(path))
    model = zoo.get_model("resnet18", weights=str(path))  # the file's filter
    assert model.maxpool.filter_size == 4 and model.fc.out_features == 10
    assert zoo.get_model("resnet18", filter_size="binomial-4", weights=str(path)) is not None


@pytest.mark.parametrize(("field", "value"), [("num_classes", "ten"), ("filter_size", {})])
def test_a_bad_stored_description_is_a_one_line_error(
    tmp_path: Path, field: str, value: object
) -> None:
    path = _described(tmp_path, **{field: value})
    with pytest.raises(CheckpointError, match=f"store {field}={value!r} in their description"):
        zoo.get_model("resnet18", weights=str(path))
    if field == "num_classes":
        with pytest.raises(CheckpointError, match="expected a positive int"):
            zoo.weights_num_classes(str(path))
