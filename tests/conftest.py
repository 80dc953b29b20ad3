"""Shared fixtures: seeded generators, the device under test, an isolated torch.hub cache, a local HTTP server."""

from __future__ import annotations

import functools
import http.server
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

# Test inputs are tiny: one intra-op thread per test process is faster than two (measured 6-10x on the
# shared 2-core machine), and pytest-xdist runs one process per core.
torch.set_num_threads(int(os.environ.get("ANTIALIAS_TEST_THREADS", "1")))

# The Triton kernels run in Triton's CPU interpreter unless the tests target a GPU; Triton reads this when it
# is first imported, so it is set before any test module imports it (no other test uses Triton).
if os.environ.get("ANTIALIAS_TEST_DEVICE", "cpu") == "cpu":
    os.environ.setdefault("TRITON_INTERPRET", "1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("ANTIALIAS_TEST_NETWORK") == "1":
        return
    skip = pytest.mark.skip(reason="needs the internet; set ANTIALIAS_TEST_NETWORK=1")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def generator() -> torch.Generator:
    """A CPU generator with a fixed seed: tests draw their inputs from it, never from global state."""
    return torch.Generator().manual_seed(0)


@pytest.fixture
def device() -> torch.device:
    """The device under test: ``ANTIALIAS_TEST_DEVICE`` (e.g. ``cuda``) or the CPU."""
    return torch.device(os.environ.get("ANTIALIAS_TEST_DEVICE", "cpu"))


_INIT_FUNCTIONS = (
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "uniform_",
    "constant_",
    "ones_",
    "zeros_",
    "xavier_uniform_",
    "xavier_normal_",
    "trunc_normal_",
)


@pytest.fixture
def no_random_init(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip ``nn.init`` while models build, for tests whose every value is overwritten by a strict load."""
    for name in _INIT_FUNCTIONS:
        monkeypatch.setattr(torch.nn.init, name, lambda tensor, *args, **kwargs: tensor)


@pytest.fixture
def hub_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """torch.hub's cache in ``tmp_path`` (checkpoints land in ``<hub_dir>/checkpoints``)."""
    path = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "_hub_dir", str(path))
    monkeypatch.delenv("ANTIALIAS_WEIGHTS_MIRROR", raising=False)
    for name in (
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)  # the server is on 127.0.0.1, never behind a proxy
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # keep the test output clean
        pass


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1 in a thread, serving a fresh folder: yields (base URL, folder)."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# The tiny image folders and run settings of the training tests (tests/train/_train_data.py) serve the tests
# outside tests/train too: ``from _train_data import TINY, write_image_tree``.
sys.path.append(str(Path(__file__).resolve().parent / "train"))


class _Payload:
    """Unpickling this calls ``open(marker, "w")``: the marker file appears only if the pickle runs."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.marker, "w"))


@pytest.fixture
def payload(tmp_path: Path) -> _Payload:
    """An object whose unpickling creates ``tmp_path / "MARKER"`` (the classic pickle exploit): plant it in a
    file, load the file, and assert that the marker does not exist."""
    return _Payload(tmp_path / "MARKER")


@pytest.fixture
def image_data(tmp_path: Path) -> Path:
    """``data/train`` and ``data/val``: two classes ("blue", "red") of four 40x40 images each."""
    from _train_data import write_image_tree

    root = tmp_path / "data"
    write_image_tree(root / "train", seed=0)
    write_image_tree(root / "val", seed=1)
    return root
