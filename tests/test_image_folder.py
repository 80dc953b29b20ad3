"""antialias.data (data.py): image-folder loading with ImageFolder semantics and clear failures, and the one
evaluation transform."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from antialias.data import (
    IMAGENET_MEAN,
    CorruptImageError,
    consistency_transform,
    eval_transform,
    load_image_folder,
)


def write(path, size=(12, 10), value=100, fmt=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[0], size[1], 3), value, dtype=np.uint8)).save(path, format=fmt)


@pytest.fixture
def folder(tmp_path):
    write(tmp_path / "n02" / "a.png")
    write(tmp_path / "n02" / "sub" / "b.JPG")  # nested, upper-case ending
    write(tmp_path / "n01" / "c.jpeg")
    (tmp_path / "n01" / "notes.txt").write_text("not an image")
    return tmp_path


def test_imagefolder_semantics(folder):
    ds = load_image_folder(folder)
    assert ds.classes == ["n01", "n02"] and ds.class_to_idx == {"n01": 0, "n02": 1}
    assert [t for _, t in ds.samples] == [0, 1, 1] and ds.targets == [0, 1, 1]
    image, label = ds[2]
    assert isinstance(image, Image.Image) and image.mode == "RGB" and label == 1
    ds = load_image_folder(folder, eval_transform(resize=8, crop=6), extensions=[".png"])
    assert len(ds) == 1
    tensor, _ = ds[0]
    assert tensor.shape == (3, 6, 6)
    expected = (100 / 255 - IMAGENET_MEAN[0]) / 0.229
    torch.testing.assert_close(tensor[0], torch.full((6, 6), expected), atol=1e-5, rtol=0)


def test_flat_folder_is_unlabelled(tmp_path):
    write(tmp_path / "x.png")
    write(tmp_path / "y.png")
    ds = load_image_folder(tmp_path)
    assert ds.classes == [] and ds.targets == [-1, -1] and not ds.labelled


def test_missing_empty_and_not_a_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data folder '.*nope' does not exist"):
        load_image_folder(tmp_path / "nope")
    with pytest.raises(ValueError, match="no images .* found in data folder"):
        load_image_folder(tmp_path)
    (tmp_path / "cls").mkdir()
    (tmp_path / "cls" / "a.txt").write_text("x")
    with pytest.raises(ValueError, match="no images"):
        load_image_folder(tmp_path)
    (tmp_path / "file.png").write_bytes(b"")
    with pytest.raises(NotADirectoryError, match="is not a folder"):
        load_image_folder(tmp_path / "file.png")
    with pytest.raises(ValueError, match="on_corrupt must be one of"):
        load_image_folder(tmp_path, on_corrupt="ignore")  # type: ignore[arg-type]


def test_corrupt_image_fail_or_skip(folder, caplog):
    bad = folder / "n01" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8 not really a jpeg")
    with pytest.raises(CorruptImageError, match="broken.jpg"):
        load_image_folder(folder, verify=True)
    with caplog.at_level(logging.WARNING, logger="antialias.data"):
        ds = load_image_folder(folder, on_corrupt="skip")
    assert len(ds) == 3 and all("broken" not in p for p, _ in ds.samples)
    assert "broken.jpg" in caplog.text
    # Without the up-front check, the broken file is named when it is loaded.
    ds = load_image_folder(folder)
    index = [p for p, _ in ds.samples].index(str(bad))
    with pytest.raises(CorruptImageError, match="cannot read image .*broken.jpg"):
        ds[index]


def test_images_smaller_than_required(folder):
    write(folder / "n01" / "tiny.png", size=(5, 30))
    with pytest.raises(
        CorruptImageError, match=r"tiny.png' is 5x30 \(HxW\), smaller than the required 8x8"
    ):
        load_image_folder(folder, min_size=8)
    ds = load_image_folder(folder, min_size=(8, 8), on_corrupt="skip")
    assert len(ds) == 3


def test_transforms_validate_sizes():
    with pytest.raises(ValueError, match=r"resize \(200\) must be at least crop \(224\)"):
        eval_transform(200, 224)
    tf = consistency_transform(resize=20, crop=18)
    out = tf(Image.fromarray(np.zeros((30, 40, 3), dtype=np.uint8)))
    assert out.shape == (3, 18, 18)
    assert eval_transform(None, 4)(Image.fromarray(np.zeros((6, 9, 3), np.uint8))).shape == (
        3,
        4,
        4,
    )


def test_eval_transform_takes_pil_uint8_batches_and_floats_alike():
    rng = np.random.default_rng(0)
    array = rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)
    tf = eval_transform(20, 16)
    pil = tf(Image.fromarray(array))
    uint8 = torch.from_numpy(array).permute(2, 0, 1).contiguous()
    assert pil.shape == (3, 16, 16) and pil.dtype == torch.float32
    torch.testing.assert_close(
        tf(uint8), pil, atol=2e-2, rtol=0
    )  # PIL and tensor resizes round differently
    batch = torch.stack([uint8, uint8])
    assert tf(batch).shape == (2, 3, 16, 16)
    torch.testing.assert_close(
        tf(batch.float() / 255), tf(batch), atol=2e-2, rtol=0
    )  # a float is not scaled again
    no_resize = eval_transform(None, 16)
    assert torch.equal(no_resize(uint8.float() / 255), no_resize(uint8))


def test_eval_transform_crop_pct_interpolation_and_the_weights_transform():
    from antialias.models import ResNet50_Weights

    image = Image.fromarray(
        np.random.default_rng(1).integers(0, 256, (300, 411, 3), dtype=np.uint8)
    )
    # The weights' transform is this one: crop_pct 0.875 of 224 is Resize(256).
    expected = eval_transform(256, 224)(image)
    assert torch.equal(eval_transform(crop=224, crop_pct=0.875)(image), expected)
    assert torch.equal(ResNet50_Weights.DEFAULT.transforms()(image), expected)
    assert eval_transform(crop=(20, 30), crop_pct=1.0)(image).shape == (3, 20, 30)
    assert not torch.equal(eval_transform(256, 224, interpolation="bicubic")(image), expected)
    with pytest.raises(ValueError, match="interpolation must be one of .*got 'cubic'"):
        eval_transform(interpolation="cubic")
    with pytest.raises(ValueError, match="crop_pct must be > 0"):
        eval_transform(crop_pct=0.0)
