from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from leafprep import ImageLoadError, ImageTooLargeError, load_image
from photos import encode, page_with_digit, png_header_only


def gradient(height=40, width=60) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    return np.stack([xx * 4, yy * 6, (xx + yy) * 2], axis=2).astype(np.uint8)


def test_load_image_gives_same_pixels_from_path_bytes_file_and_array(tmp_path):
    rgb = gradient()
    data = encode(rgb, "PNG")
    path = tmp_path / "g.png"
    path.write_bytes(data)
    for source in (path, str(path), data, io.BytesIO(data), rgb):
        out = load_image(source)
        assert out.dtype == np.uint8 and out.shape == (40, 60, 3)
        np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_load_image_applies_exif_orientation(orientation):
    rgb = gradient(30, 50)
    image = Image.fromarray(rgb)
    exif = image.getexif()
    exif[0x0112] = orientation
    out = load_image(encode(image, "PNG", exif=exif.tobytes()))
    expected = np.asarray(
        {
            2: image.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
            3: image.transpose(Image.Transpose.ROTATE_180),
            4: image.transpose(Image.Transpose.FLIP_TOP_BOTTOM),
            5: image.transpose(Image.Transpose.TRANSPOSE),
            6: image.transpose(Image.Transpose.ROTATE_270),
            7: image.transpose(Image.Transpose.TRANSVERSE),
            8: image.transpose(Image.Transpose.ROTATE_90),
        }[orientation]
    )
    np.testing.assert_array_equal(out, expected)


def test_load_image_composites_alpha_onto_white():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 3] = 0
    rgba[0, 0] = (0, 0, 0, 255)
    rgba[0, 1] = (0, 0, 0, 128)
    out = load_image(encode(rgba, "PNG"))
    assert tuple(out[0, 0]) == (0, 0, 0)
    assert tuple(out[3, 3]) == (255, 255, 255)
    assert 120 <= out[0, 1, 0] <= 135


def test_load_image_composites_palette_transparency_onto_white():
    image = Image.new("P", (3, 3), 0)
    image.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    image.putpixel((1, 1), 1)
    out = load_image(encode(image, "PNG", transparency=0))
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[1, 1]) == (10, 20, 30)


def test_load_image_scales_16_bit_to_8_bit():
    values = np.array([[0, 257 * 100, 65535]], np.uint16)
    out = load_image(encode(Image.fromarray(values), "PNG"))
    assert out.shape == (1, 3, 3)
    assert list(out[0, :, 0]) == [0, 100, 255]
    assert list(load_image(values)[0, :, 0]) == [0, 100, 255]


def test_load_image_reads_cmyk_jpeg_as_rgb():
    cmyk = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # pure red ink
    out = load_image(encode(cmyk, "JPEG", quality=95))
    red, green, blue = out[8, 8].astype(int)
    assert red > 200 and green < 60 and blue < 60


def test_load_image_reads_greyscale_jpeg():
    gray = np.tile(np.arange(0, 256, 16, dtype=np.uint8), (16, 1))
    out = load_image(encode(gray, "JPEG", quality=95))
    assert out.shape == (16, 16, 3)
    assert (out[..., 0] == out[..., 1]).all()


def test_load_image_takes_first_frame_of_animated_gif():
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 255, 255), (0, 0, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    out = load_image(buffer.getvalue())
    assert out.min() == 255


@pytest.mark.parametrize("fmt", ["BMP", "TIFF", "WEBP", "MPO"])
def test_load_image_reads_other_formats(fmt):
    rgb = page_with_digit(size=(48, 40))
    params = {"lossless": True} if fmt == "WEBP" else {}
    out = load_image(encode(rgb, fmt, **params))
    assert out.shape == rgb.shape
    if fmt != "MPO":
        np.testing.assert_array_equal(out, rgb)


def test_load_image_refuses_large_header_before_decoding():
    with pytest.raises(ImageTooLargeError, match="900,000,000 pixels, over the limit"):
        load_image(png_header_only(30000, 30000))


def test_load_image_pixel_limit_is_configurable():
    rgb = gradient(40, 60)
    with pytest.raises(ImageTooLargeError, match="over the limit of 2,000 pixels"):
        load_image(encode(rgb, "PNG"), max_pixels=2000)
    assert load_image(encode(rgb, "PNG"), max_pixels=2400).shape == (40, 60, 3)


def test_load_image_decodes_large_jpeg_at_reduced_size_when_allowed():
    rgb = page_with_digit(size=(1600, 1200))
    data = encode(rgb, "JPEG", quality=90)
    reduced = load_image(data, min_side=300)
    assert reduced.shape == (400, 300, 3)
    assert load_image(data).shape == (1600, 1200, 3)


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"just some text, not a picture\n", "not a recognised image"),
        (b'<svg xmlns="http://www.w3.org/2000/svg"></svg>', "SVG"),
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "HEIC"),
    ],
)
def test_load_image_explains_non_images(tmp_path, data, reason):
    path = tmp_path / "photo.jpg"
    path.write_bytes(data)
    with pytest.raises(ImageLoadError, match=reason) as info:
        load_image(path)
    assert str(path) in str(info.value)


def test_load_image_reports_truncated_jpeg(tmp_path):
    data = encode(page_with_digit(), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="truncated"):
        load_image(path)


def test_load_image_reports_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="is a folder"):
        load_image(tmp_path)


def test_load_image_names_non_ascii_files(tmp_path):
    path = tmp_path / "zíffer 7 ñ «x».png"
    path.write_bytes(encode(gradient(), "PNG"))
    assert load_image(path).shape == (40, 60, 3)
    bad = tmp_path / "défaut.png"
    bad.write_bytes(b"nope")
    with pytest.raises(ImageLoadError, match=r"défaut\.png"):
        load_image(bad)


@pytest.mark.parametrize(
    "array, message",
    [
        (np.zeros((2, 2, 2), np.uint8), "shape"),
        (np.full((2, 2), np.nan, np.float32), "NaN"),
        (np.full((2, 2), 3.0), r"\[0, 1\]"),
        (np.zeros((2, 2), np.int64), "dtype"),
        (np.zeros((0, 3), np.uint8), "empty"),
    ],
)
def test_load_image_rejects_unusable_arrays(array, message):
    with pytest.raises(ImageLoadError, match=message):
        load_image(array)


def _damaged_leaf_photo(how: str) -> bytes:
    """A sample leaf photo with its entropy-coded data damaged in the middle (the file's length kept)."""
    from photos import ROOT

    data = bytearray((ROOT / "sample_data" / "leaves" / "ovata" / "leaf-1.jpg").read_bytes())
    scan = data.index(b"\xff\xda")
    middle = (scan + len(data)) // 2
    block = np.random.default_rng(0).integers(0, 256, 400, dtype=np.uint8).tobytes() if how == "garbled" else bytes(400)
    data[middle : middle + 400] = block
    return bytes(data)


def test_a_jpeg_that_libjpeg_only_warns_of_is_rejected_by_name_when_pillow_refuses_it(tmp_path, capfd):
    path = tmp_path / "garbled.jpg"
    path.write_bytes(_damaged_leaf_photo("garbled"))
    with pytest.raises(ImageLoadError, match=r"garbled\.jpg: is corrupt: .*libjpeg: Corrupt JPEG data"):
        load_image(path, min_side=64)
    assert "Corrupt JPEG" not in capfd.readouterr().err  # not printed raw (by C, nameless) as well


def test_a_jpeg_decoded_past_damage_comes_with_a_warning_that_names_it(tmp_path, capfd):
    from leafprep import LeafprepWarning

    path = tmp_path / "zeroed.jpg"
    path.write_bytes(_damaged_leaf_photo("zeroed"))
    with pytest.warns(LeafprepWarning, match=r"zeroed\.jpg: the JPEG data is damaged \(libjpeg: Corrupt JPEG data"):
        image = load_image(path, min_side=64)
    assert image.ndim == 3
    assert "Corrupt JPEG" not in capfd.readouterr().err


def test_a_truncated_jpeg_says_truncated_without_pillows_byte_count(tmp_path):
    data = encode(page_with_digit(), "JPEG")
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) - 1])
    with pytest.raises(ImageLoadError, match="truncated") as info:
        load_image(path)
    assert "bytes not processed" not in str(info.value)


def test_what_other_c_code_prints_while_a_jpeg_decodes_is_passed_on_as_it_was(monkeypatch, capfd):
    import os

    import cv2

    from leafprep import loading

    real = cv2.imdecode

    def chatty(buffer, flag):
        os.write(2, b"someone else's line\nCorrupt JPEG data: 3 extraneous bytes before marker 0xd9\n")
        return real(buffer, flag)

    monkeypatch.setattr(cv2, "imdecode", chatty)
    picture, damage = loading._decode_jpeg(encode(page_with_digit(), "JPEG"), 1)
    assert picture is not None and damage == "Corrupt JPEG data: 3 extraneous bytes before marker 0xd9"
    err = capfd.readouterr().err
    assert "someone else's line\n" in err and "Corrupt JPEG" not in err
