"""Turning the API's image fields (base64, a data: URI, or an HTTPS URL where
allowed) into checked RGB pixel arrays."""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import simplejpeg
from PIL import Image, UnidentifiedImageError

from . import metrics
from .errors import ApiError, invalid
from .image_urls import UrlFetcher, is_url

# Verifik's crop limit.
MAX_CROP_SIDE = 120
# Below this no detector finds a face: refuse it by name instead.
MIN_SIDE = 20
# Still photographs only: GIF (animation, 256 colours), TIFF, ICO... are refused.
FORMATS = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "BMP": "BMP"}
# Every JPEG starts with its SOI marker and another marker.
JPEG_MAGIC = b"\xff\xd8\xff"
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
    if data.startswith(JPEG_MAGIC):
        pixels = _decode_jpeg(data, field, max_side)
        if pixels is not None:
            return pixels
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in FORMATS:
                raise invalid(
                    "unsupported_image_format", f"{field} is a {img.format} image; send {', '.join(FORMATS.values())}"
                )
            _check_size(field, *img.size, max_side)
            img.load()
            return np.asarray(img.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise _unreadable(field) from None


def _decode_jpeg(data: bytes, field: str, max_side: int | None) -> npt.NDArray[np.uint8] | None:
    """A JPEG's RGB pixels through libjpeg-turbo directly (simplejpeg), the
    same pixels as Pillow's at 2.3x its speed on a crop (bench.decode);
    None for CMYK, which only Pillow turns into RGB. Strict: a truncated or
    corrupt JPEG is unreadable, not half grey."""
    try:
        height, width, colorspace, _ = simplejpeg.decode_jpeg_header(data)
    except ValueError:
        raise _unreadable(field) from None
    _check_size(field, width, height, max_side)
    if colorspace in ("CMYK", "YCCK"):
        return None
    try:
        pixels: npt.NDArray[np.uint8] = simplejpeg.decode_jpeg(data, colorspace="RGB")
    except ValueError:
        raise _unreadable(field) from None
    return pixels


def _check_size(field: str, width: int, height: int, max_side: int | None) -> None:
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


def _unreadable(field: str) -> ApiError:
    return invalid("invalid_image", f"{field} is not a readable image (JPEG, PNG, WebP, BMP...)")


class ImageReader:
    """Image fields to pixels: base64 decoded here, URLs fetched by `urls`."""

    def __init__(self, urls: UrlFetcher):
        self.urls = urls

    async def pixels(
        self, texts: Sequence[str], field: str, max_side: int | None = None
    ) -> list[npt.NDArray[np.uint8]]:
        """Each of `texts` (fields `field[i]`) decoded and checked; URLs are
        fetched together first, so a bad one refuses the request before any
        pixel is decoded."""
        names = [f"{field}[{i}]" for i in range(len(texts))]
        return await self._pixels(texts, names, max_side)

    async def one(self, text: str, field: str) -> npt.NDArray[np.uint8]:
        return (await self._pixels([text], [field], None))[0]

    async def _pixels(
        self, texts: Sequence[str], names: list[str], max_side: int | None
    ) -> list[npt.NDArray[np.uint8]]:
        urls = [(name, text) for name, text in zip(names, texts, strict=True) if is_url(text)]
        fetched = iter(await self.urls.fetch(urls)) if urls else iter(())
        blobs = [next(fetched) if is_url(t) else decode_base64(t, name) for name, t in zip(names, texts, strict=True)]
        with metrics.STAGE.labels("decode").time():
            return [decode_image(blob, name, max_side) for name, blob in zip(names, blobs, strict=True)]


def to_jpeg_base64(pixels: npt.NDArray[np.uint8], quality: int = 90) -> str:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG", quality=quality)
    return base64.b64encode(buf.getvalue()).decode("ascii")
