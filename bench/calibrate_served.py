"""`facesearch calibrate` as an operator runs it, measured: MobileFaceNet
exported as a model file (`facesearch model export`), its calibration
removed, served by a stack of its own; the command fits it on lfw-dev
(300 identities, the 1,000 distractors making the larger galleries) and
stores it; then the shipped fit is stored instead and the command runs again
with --dry-run, so that the same held-out tables are printed for the fit
(the same data: the same fit) beside the shipped one.

    python -m bench.calibrate_served
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import httpx

from bench.common import console
from devkit import lfw
from devkit.client import API, facesearch_calibrate
from devkit.stack import Stack
from facesearch_common import tokens
from facesearch_common.specs import MOBILEFACENET_CASIA


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "facesearch_cli",
                "model",
                "export",
                MOBILEFACENET_CASIA.name,
                str(root / "m"),
            ],
            env={"FACESEARCH_WEIGHTS": str(lfw.MOBILEFACENET), "PATH": str(Path(sys.executable).parent)},
            check=True,
        )
        toml = root / "m" / "model.toml"
        text = toml.read_text()
        toml.write_text(text[: text.index("[calibration]")])
        env = {"FACESEARCH_MODEL": str(toml), "FACESEARCH_YUNET_WEIGHTS": str(lfw.YUNET)}
        with Stack(root / "stack", env).running() as stack:
            admin = tokens.create_token(tokens.KeyFiles.in_dir(stack.data_dir / "keys"), "ops", 3600, admin=True)
            flags = ("--distractors", str(lfw.DISTRACTORS))
            started = time.perf_counter()
            fitted = facesearch_calibrate(stack.rest, lfw.IDENTITIES, admin, *flags)
            seconds = time.perf_counter() - started
            console.print(fitted.stdout, fitted.stderr)
            console.print(f"facesearch calibrate: {seconds:.1f} s, exit {fitted.returncode}")
            shipped = {
                "model": f"{MOBILEFACENET_CASIA.name}-onnx",
                "calibration": asdict(MOBILEFACENET_CASIA.calibration),
            }
            httpx.put(
                f"{stack.rest}{API}/admin/calibration",
                json=shipped,
                headers={"Authorization": f"Bearer {admin}"},
                timeout=30,
            ).raise_for_status()
            time.sleep(3)  # every gateway reads it (2 s)
            again = facesearch_calibrate(stack.rest, lfw.IDENTITIES, admin, *flags, "--dry-run")
            console.print(again.stdout, again.stderr)


if __name__ == "__main__":
    main()
