"""Turning the API's base64 strings into checked RGB pixel arrays."""

from __future__ import annotations

import base64
import binascii
import io
import re

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from .errors import invalid

# Verifik's crop limit.
MAX_CROP_SIDE = 120
# Below this no detector finds a face: refuse it by name instead.
MIN_SIDE = 20
# Still photographs only: GIF (animation, 256 colours), TIFF, ICO... are refused.
FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "BMP": "BMP"}
# No decoded image may exceed this many pixels (decompression bombs).
MAX_PIXELS = 40_000_000
# decode_image checks the header's size itself, before decoding, and says
# how large the image claims to be; Pillow's own guard would only say "bomb".
Image.MAX_IMAGE_PIXELS = None

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(;[\w-]+=[^;,]*)*;base64,", re.IGNORECASE)


def decode_base64(text: str, field: str) -> bytes:
    """Raw base64 or a `data:...;base64,` URI -> bytes."""
    if not text:
        raise invalid("empty_image", f"{field} is empty: expected a base64-encoded image")
    match = _DATA_URI.match(text)
    payload = text[match.end() :] if match else text
    payload = "".join(payload.split())  # line-wrapped base64 is common
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise invalid("invalid_base64", f"{field} is not valid base64") from None


def decode_image(data: bytes, field: str, max_side: int | None = None) -> npt.NDArray[np.uint8]:
    """Image bytes -> uint8 [H, W, 3] RGB. Sizes are checked from the header,
    before a single pixel is decoded."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in FORMATS:
                raise invalid(
                    "unsupported_image_format", f"{field} is a {img.format} image; send {', '.join(FORMATS.values())}"
                )
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise invalid("image_too_large", f"{field} is {width}x{height} pixels, more than {MAX_PIXELS}")
            if max_side is not None and (width > max_side or height > max_side):
                raise invalid(
                    "crop_too_large",
                    f"{field} is {width}x{height} pixels; a face crop must be at most {max_side}x{max_side}",
                )
            if width < MIN_SIDE or height < MIN_SIDE:
                raise invalid(
                    "image_too_small",
                    f"{field} is {width}x{height} pixels; a face needs at least {MIN_SIDE}x{MIN_SIDE}",
                )
            img.load()
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise invalid("invalid_image", f"{field} is not a readable image (JPEG, PNG, WebP, BMP...)") from None


def decode_crop(text: str, field: str) -> npt.NDArray[np.uint8]:
    """A face crop: a decodable image of at most MAX_CROP_SIDE pixels each side."""
    return decode_image(decode_base64(text, field), field, max_side=MAX_CROP_SIDE)


def to_jpeg_base64(pixels: npt.NDArray[np.uint8], quality: int = 90) -> str:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return base64.b64encode(buf.getvalue()).decode("ascii")
