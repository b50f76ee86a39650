import base64
import io

import grpc
import numpy as np
import pytest
from PIL import Image

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
