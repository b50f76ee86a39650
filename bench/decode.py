"""The gateway's image decode, against Pillow's (what it used for every
format before) and libjpeg-turbo called bare, in one run: real lfw-dev
faces as clients send them, a 120x120 crop (search/crops) and a 170x170
portrait (enrollment, full-image search), JPEG at quality 92; CPU time a
decode, the median of several passes over every image.

    python -m bench.decode [--images 200] [--passes 5]
"""

from __future__ import annotations

import argparse
import base64
import io
import statistics
import time
from collections.abc import Callable

import numpy as np
import simplejpeg
from PIL import Image
from rich.table import Table

from bench.common import console
from devkit import lfw
from gateway.images import decode_image


def pillow(data: bytes) -> np.ndarray:
    """The gateway's decode before: Pillow, whatever the format."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        return np.asarray(img.convert("RGB"))


def bare(data: bytes) -> np.ndarray:
    """libjpeg-turbo with nothing around it: no header check, no sizes."""
    return simplejpeg.decode_jpeg(data, colorspace="RGB")


def gateway(data: bytes) -> np.ndarray:
    return decode_image(data, "images[0]")


def us_a_decode(decode: Callable[[bytes], np.ndarray], blobs: list[bytes], passes: int) -> float:
    times = []
    for _ in range(passes):
        started = time.process_time()
        for blob in blobs:
            decode(blob)
        times.append((time.process_time() - started) / len(blobs))
    return statistics.median(times) * 1e6


def main(images: int, passes: int) -> None:
    paths = [path for name in lfw.identities() for path in lfw.photos(name)][:images]
    kinds = {
        "crop 120x120": [base64.b64decode(lfw.b64(lfw.crop(p))) for p in paths],
        "portrait 170x170": [base64.b64decode(lfw.b64(lfw.portrait(p))) for p in paths],
    }
    table = Table(title=f"CPU us a decode, median of {passes} passes over {len(paths)} lfw-dev images")
    for column in (
        "image",
        "Pillow (before)",
        "gateway (now)",
        "vs Pillow",
        "libjpeg-turbo bare",
        "vs bare",
        "max |diff|",
    ):
        table.add_column(column, justify="left" if column == "image" else "right")
    for kind, blobs in kinds.items():
        diff = max(int(np.abs(gateway(b).astype(int) - pillow(b)).max()) for b in blobs)
        before, now, floor = (us_a_decode(f, blobs, passes) for f in (pillow, gateway, bare))
        table.add_row(
            kind,
            f"{before:.1f}",
            f"{now:.1f}",
            f"{before / now:.2f}x",
            f"{floor:.1f}",
            f"{floor / now:.2f}x",
            str(diff),
        )
    console.print(table)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    main(args.images, args.passes)
