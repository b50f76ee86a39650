import base64
import io

import grpc
import numpy as np
import pytest
from PIL import Image

from gateway import images
from gateway.errors import ApiError
from gateway.images import MAX_CROP_SIDE, decode_base64, decode_image, to_jpeg_base64


def encoded(width, height, fmt="PNG"):
    buf = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 200, np.uint8)).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


def decode_crop(text: str, field: str):
    return decode_image(decode_base64(text, field), field, max_side=MAX_CROP_SIDE)


def reason_of(fn, *args):
    with pytest.raises(ApiError) as caught:
        fn(*args)
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    return caught.value.reason, caught.value.message


def test_raw_base64_data_uri_and_wrapped_lines_decode_alike():
    raw = encoded(10, 10)
    wrapped = "\n".join(raw[i : i + 76] for i in range(0, len(raw), 76))
    for text in (raw, f"data:image/png;base64,{raw}", f"DATA:image/png;charset=utf-8;base64,{raw}", wrapped):
        assert decode_base64(text, "images[0]") == base64.b64decode(raw)


@pytest.mark.parametrize("text", ["not base64!", "abc", "data:image/png;base64,@@@"])
def test_invalid_base64(text):
    assert reason_of(decode_base64, text, "images[2]") == ("invalid_base64", "images[2] is not valid base64")


def test_empty_image():
    assert reason_of(decode_base64, "", "images[0]")[0] == "empty_image"


@pytest.mark.parametrize("data", [b"plain text", b"\x89PNG\r\n\x1a\n truncated", b""])
def test_bytes_that_are_not_an_image(data):
    assert reason_of(decode_image, data, "images[0]")[0] == "invalid_image"


def test_truncated_jpeg_is_rejected():
    data = base64.b64decode(encoded(64, 64, "JPEG"))[:200]
    assert reason_of(decode_image, data, "images[0]")[0] == "invalid_image"


def test_grayscale_and_alpha_images_become_rgb():
    for mode in ("L", "RGBA", "P"):
        buf = io.BytesIO()
        Image.new(mode, (32, 24)).save(buf, format="PNG")
        assert decode_image(buf.getvalue(), "x").shape == (24, 32, 3)


def test_formats_and_sizes_are_checked_from_the_header():
    assert reason_of(decode_crop, encoded(30, 30, "GIF"), "images[0]") == (
        "unsupported_image_format",
        "images[0] is a GIF image; send JPEG, PNG, WebP, BMP",
    )
    assert reason_of(decode_crop, encoded(1, 1), "images[0]") == (
        "image_too_small",
        "images[0] is 1x1 pixels; a face needs at least 20x20",
    )
    for fmt in ("JPEG", "PNG", "WEBP", "BMP"):
        assert decode_crop(encoded(40, 40, fmt), "images[0]").shape == (40, 40, 3)


def test_truncated_images_are_unreadable_not_a_crash():
    for fmt in ("JPEG", "PNG"):
        whole = base64.b64decode(encoded(100, 100, fmt))
        assert reason_of(decode_image, whole[: len(whole) // 2], "images[0]")[0] == "invalid_image"


def test_crop_size_limit():
    assert decode_crop(encoded(MAX_CROP_SIDE, MAX_CROP_SIDE), "images[0]").shape == (120, 120, 3)
    assert reason_of(decode_crop, encoded(121, 121), "images[0]") == (
        "crop_too_large",
        "images[0] is 121x121 pixels; a face crop must be at most 120x120",
    )
    assert reason_of(decode_crop, encoded(80, 121), "images[3]")[0] == "crop_too_large"


def test_jpeg_thumbnail_round_trip():
    pixels = np.full((20, 30, 3), 90, np.uint8)
    assert decode_image(base64.b64decode(to_jpeg_base64(pixels)), "t").shape == (20, 30, 3)


def jpeg(pixels, **options):
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", **options)
    return buf.getvalue()


def pillow_pixels(data):
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("RGB"))


@pytest.mark.parametrize(
    "options",
    [{}, {"subsampling": 0}, {"progressive": True}, {"quality": 40}],
    ids=["420", "444", "progressive", "q40"],
)
def test_jpeg_decodes_to_the_pixels_pillow_gives(options):
    rng = np.random.default_rng(7)
    # Smooth colour with noise on top: subsampled chroma and every DCT band are exercised.
    ramp = np.linspace(0, 255, 97, dtype=np.float32)
    pixels = np.stack(
        [np.add.outer(ramp[:83], ramp) / 2, np.tile(ramp, (83, 1)), np.tile(ramp[:83, None], (1, 97))], -1
    )
    pixels = np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)
    data = jpeg(pixels, **options)
    assert images._decode_jpeg(data, "images[0]", None) is not None  # libjpeg-turbo's path, not Pillow's
    decoded = decode_image(data, "images[0]")
    assert decoded.shape == (83, 97, 3) and decoded.dtype == np.uint8
    assert np.abs(decoded.astype(int) - pillow_pixels(data)).max() <= 1


def test_grayscale_and_cmyk_jpegs_become_rgb():
    gray = jpeg(np.full((30, 40), 77, np.uint8))
    assert np.array_equal(decode_image(gray, "x"), np.full((30, 40, 3), 77, np.uint8))
    buf = io.BytesIO()
    Image.new("CMYK", (40, 30), (0, 255, 255, 0)).save(buf, format="JPEG")  # red, which only Pillow converts
    assert images._decode_jpeg(buf.getvalue(), "x", None) is None
    red = decode_image(buf.getvalue(), "x")
    assert red.shape == (30, 40, 3) and red[..., 0].min() > 200 and red[..., 1:].max() < 50


def test_jpeg_sizes_are_checked_from_its_header():
    assert reason_of(decode_crop, base64.b64encode(jpeg(np.zeros((121, 50, 3), np.uint8))).decode(), "images[1]") == (
        "crop_too_large",
        "images[1] is 50x121 pixels; a face crop must be at most 120x120",
    )
    assert reason_of(decode_image, jpeg(np.zeros((19, 50, 3), np.uint8)), "images[0]")[0] == "image_too_small"


def test_a_jpeg_with_a_corrupt_scan_is_unreadable_not_half_grey():
    data = bytearray(jpeg(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8)))
    scan = data.index(b"\xff\xda") + 20  # past the start-of-scan header: entropy-coded data
    data[scan : scan + 200] = b"\xff\xd9" * 100  # end-of-image markers where the pixels were
    assert reason_of(decode_image, bytes(data), "images[0]") == (
        "invalid_image",
        "images[0] is not a readable image (JPEG, PNG, WebP, BMP...)",
    )
