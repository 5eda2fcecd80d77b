"""Image file I/O: colour layouts, bit depths, alpha, palettes, errors, and folder listing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from src.data.image_io import list_images, load_image, save_image, to_uint8


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_rgb8_roundtrip_is_exact(tmp_path):
    data = _rng(1).integers(0, 256, size=(13, 17, 3), dtype=np.uint8)
    img = torch.from_numpy(data).permute(2, 0, 1).float() / 255.0
    path = tmp_path / "rgb.png"
    save_image(img, path)
    # the file holds exactly the uint8 values
    assert np.array_equal(np.asarray(Image.open(path)), data)
    out = load_image(path)
    assert out.dtype == torch.float32 and out.shape == (3, 13, 17)
    assert np.array_equal(to_uint8(out).permute(1, 2, 0).numpy(), data)
    assert torch.allclose(out, img, atol=1e-7, rtol=0)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_rgb_from_pil_file_values(tmp_path):
    data = np.zeros((2, 3, 3), dtype=np.uint8)
    data[0, 0] = (255, 0, 0)
    data[1, 2] = (10, 20, 30)
    Image.fromarray(data).save(tmp_path / "x.png")
    out = load_image(tmp_path / "x.png")
    assert out[:, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert torch.allclose(out[:, 1, 2], torch.tensor([10.0, 20.0, 30.0]) / 255.0)
    assert out[:, 0, 1].abs().sum().item() == 0.0


def test_grayscale_stays_one_channel_and_expands(tmp_path):
    data = _rng(2).integers(0, 256, size=(9, 11), dtype=np.uint8)
    Image.fromarray(data).save(tmp_path / "g.png")
    gray = load_image(tmp_path / "g.png")
    assert gray.shape == (1, 9, 11)
    assert np.array_equal((gray[0] * 255).round().to(torch.uint8).numpy(), data)
    assert torch.equal(load_image(tmp_path / "g.png", channels=1), gray)
    rgb = load_image(tmp_path / "g.png", channels=3)
    assert rgb.shape == (3, 9, 11)
    for c in range(3):
        assert torch.equal(rgb[c], gray[0])


def test_rgba_with_transparency_warns_and_keeps_rgb(tmp_path):
    data = _rng(3).integers(0, 256, size=(5, 6, 4), dtype=np.uint8)
    data[..., 3] = 255
    data[2, 3, 3] = 0  # one transparent pixel
    Image.fromarray(data, mode="RGBA").save(tmp_path / "a.png")
    with pytest.warns(UserWarning, match="alpha"):
        out = load_image(tmp_path / "a.png")
    assert out.shape == (3, 5, 6)
    # RGB values are kept as they are (not composited onto a background), including the transparent pixel
    assert np.array_equal((out * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), data[..., :3])


def test_opaque_rgba_drops_alpha_silently(tmp_path):
    data = _rng(4).integers(0, 256, size=(4, 4, 4), dtype=np.uint8)
    data[..., 3] = 255
    Image.fromarray(data, mode="RGBA").save(tmp_path / "o.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = load_image(tmp_path / "o.png")
    assert out.shape == (3, 4, 4)
    assert np.array_equal((out * 255).round().to(torch.uint8).permute(1, 2, 0).numpy(), data[..., :3])


def test_gray16_keeps_precision(tmp_path):
    data = np.full((6, 7), 1000, dtype=np.uint16)
    data[0, 0] = 0
    data[5, 6] = 65535
    data[3, 3] = 1001  # differs from its neighbours by less than one 8-bit level
    Image.fromarray(data).save(tmp_path / "g16.png")
    out = load_image(tmp_path / "g16.png")
    assert out.shape == (1, 6, 7) and out.dtype == torch.float32
    assert out[0, 1, 1].item() == pytest.approx(1000 / 65535, abs=1e-7)
    assert out[0, 3, 3].item() == pytest.approx(1001 / 65535, abs=1e-7)
    assert out[0, 0, 0].item() == 0.0 and out[0, 5, 6].item() == 1.0
    assert np.array_equal((out[0].double() * 65535).round().numpy().astype(np.uint16), data)


def test_gray16_dark_image_is_not_mistaken_for_8_bit(tmp_path):
    data = np.full((3, 3), 200, dtype=np.uint16)  # all values <= 255, still a 16-bit file
    Image.fromarray(data).save(tmp_path / "dark16.png")
    out = load_image(tmp_path / "dark16.png")
    assert out[0, 1, 1].item() == pytest.approx(200 / 65535, abs=1e-7)


def test_rgb16_roundtrip_within_one_level(tmp_path):
    torch.manual_seed(0)
    img = torch.rand(3, 10, 12)
    img[:, 0, 0] = torch.tensor([0.0, 1.0, 1000 / 65535])
    save_image(img, tmp_path / "rgb16.png", bit_depth=16)
    out = load_image(tmp_path / "rgb16.png")
    assert out.shape == (3, 10, 12)
    assert (out - img).abs().max().item() <= 1 / 65535
    # finer than 8 bits: an 8-bit decode would be off by up to 0.5/255 = 128/65535
    assert out[2, 0, 0].item() == pytest.approx(1000 / 65535, abs=1e-7)


def test_gray16_save_load(tmp_path):
    img = torch.linspace(0, 1, 20).view(1, 4, 5)
    save_image(img, tmp_path / "g.png", bit_depth=16)
    out = load_image(tmp_path / "g.png")
    assert out.shape == (1, 4, 5)
    assert (out - img).abs().max().item() <= 0.5 / 65535 + 1e-7


def test_palette_image_expands_to_rgb(tmp_path):
    palette = [255, 0, 0, 0, 255, 0, 0, 0, 255, 12, 34, 56] + [0] * (256 * 3 - 12)
    idx = np.array([[0, 1, 2], [3, 3, 0]], dtype=np.uint8)
    pimg = Image.fromarray(idx, mode="P")
    pimg.putpalette(palette)
    pimg.save(tmp_path / "p.png")
    assert Image.open(tmp_path / "p.png").mode == "P"
    out = load_image(tmp_path / "p.png")
    assert out.shape == (3, 2, 3)
    u8 = (out * 255).round().to(torch.uint8)
    assert u8[:, 0, 0].tolist() == [255, 0, 0]
    assert u8[:, 0, 1].tolist() == [0, 255, 0]
    assert u8[:, 0, 2].tolist() == [0, 0, 255]
    assert u8[:, 1, 0].tolist() == [12, 34, 56]


def test_missing_file_names_path(tmp_path):
    path = tmp_path / "nope" / "missing.png"
    with pytest.raises(FileNotFoundError, match="missing.png") as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_channels_one_on_colour_file_raises(tmp_path):
    Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / "c.png")
    with pytest.raises(ValueError, match="colour"):
        load_image(tmp_path / "c.png", channels=1)
    with pytest.raises(ValueError, match="channels"):
        load_image(tmp_path / "c.png", channels=2)


def test_save_image_rejects_bad_input(tmp_path):
    with pytest.raises(ValueError):
        save_image(torch.zeros(2, 4, 4), tmp_path / "x.png")
    with pytest.raises(ValueError):
        save_image(torch.zeros(3, 4, 4), tmp_path / "x.png", bit_depth=12)


def test_save_image_clamps(tmp_path):
    img = torch.tensor([[[-0.5, 1.5], [0.5, 0.25]]])
    save_image(img, tmp_path / "c.png")
    assert np.asarray(Image.open(tmp_path / "c.png")).tolist() == [[0, 255], [128, 64]]


def test_list_images_sorts_and_filters(tmp_path):
    for name in ("b.PNG", "a.jpg", "c.JpEg", "d.txt", "e.tif", "f.BMP", "g", "h.webp"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "sub.png").mkdir()  # a folder with an image suffix is not a file
    found = [p.name for p in list_images(tmp_path)]
    assert found == ["a.jpg", "b.PNG", "c.JpEg", "e.tif", "f.BMP", "h.webp"]
    assert all(p.parent == tmp_path for p in list_images(tmp_path))
