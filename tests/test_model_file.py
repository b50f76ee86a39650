"""A model file served end to end, and calibrated while it serves.

MobileFaceNet exported by `facesearch model export` (network.onnx +
model.toml), its calibration removed, named by FACESEARCH_MODEL in a stack
of its own (two gateways): it ranks as the built-in model in the session's
stack does, and both gateways say its scores are not calibrated. `facesearch
calibrate` on lfw-dev identities fits and stores a calibration, and both
gateways score with it within seconds, without a restart. Given the shipped
fit, it answers the same searches with the same scores as the built-in model
(within 1e-4)."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import asdict

import httpx
import pytest

from devkit import lfw
from devkit.client import API, Rest, facesearch_calibrate, scrape
from devkit.stack import Stack
from facesearch_common import tokens
from facesearch_common.specs import MOBILEFACENET_CASIA

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]
IDENTITIES = range(60, 66)
MODEL = "mobilefacenet-casia-onnx"


def answers(rest: Rest, collection: str) -> list[list[tuple[str, float]]]:
    found = []
    for i in IDENTITIES:
        name = lfw.identities()[i]
        response = rest.search([lfw.b64(lfw.crop(lfw.photos(name)[1]))], min_score="0.5", collection_id=collection)
        assert response.status_code == 200, response.text
        found.append([(p["name"], p["score"]) for p in response.json()["data"]])
    return found


def enrolled(rest: Rest) -> str:
    collection = rest.collection("model-file")
    for i in IDENTITIES:
        name = lfw.identities()[i]
        rest.enroll(name, lfw.photos(name)[0], [collection])
    return collection


def calibrated(stack: Stack) -> list[float]:
    """Each gateway's facesearch_score_calibrated."""
    key = ("facesearch_score_calibrated", (("model", MODEL),))
    return [scrape(port)[key] for port in stack.gateways.metrics_ports]


def until(check, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.5)


def test_a_model_file_serves_and_is_calibrated_while_it_serves(stack, rest, tmp_path):
    exported = subprocess.run(
        [sys.executable, "-m", "facesearch_cli", "model", "export", "mobilefacenet-casia", str(tmp_path / "m")],
        env={**stack.env(), "FACESEARCH_WEIGHTS": str(lfw.MOBILEFACENET)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    toml = tmp_path / "m" / "model.toml"
    assert f"FACESEARCH_MODEL={toml}" in exported.stdout
    text = toml.read_text()
    toml.write_text(text[: text.index("[calibration]")])  # served without a fit

    built_in = answers(rest, enrolled(rest))
    env = {"FACESEARCH_MODEL": str(toml), "FACESEARCH_YUNET_WEIGHTS": str(lfw.YUNET)}
    with Stack(tmp_path / "stack", env).running() as served:
        client = Rest(served.rest, served.token())
        collection = enrolled(client)
        placeholder = answers(client, collection)
        assert calibrated(served) == [0, 0]
        admin = tokens.create_token(tokens.KeyFiles.in_dir(served.data_dir / "keys"), "ops", 600, admin=True)

        ran = facesearch_calibrate(served.rest, lfw.folder(tmp_path, range(0, 60)), admin)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert f"stored for {MODEL}" in ran.stdout
        until(lambda: calibrated(served) == [1, 1])  # both gateways, no restart
        fitted = answers(client, collection)

        shipped = {"model": MODEL, "calibration": asdict(MOBILEFACENET_CASIA.calibration)}
        headers = {"Authorization": f"Bearer {admin}"}
        stored = httpx.put(f"{served.rest}{API}/admin/calibration", json=shipped, headers=headers, timeout=30)
        assert stored.status_code == 200 and stored.json()["data"]["source"] == "stored", stored.text
        # With the shipped fit, the same scores as the built-in model, once
        # both gateways have read it (each within its 2 s refresh).
        until(lambda: same(built_in, answers(client, collection)))

    assert sum(bool(a) for a in built_in) >= 5
    # The same persons on top, whatever the calibration.
    for before, *after in zip(built_in, placeholder, fitted, strict=True):
        for other in after:
            assert [n for n, _ in before][:1] == [n for n, _ in other][:1] or not other or not before


def same(before: list[list[tuple[str, float]]], after: list[list[tuple[str, float]]]) -> bool:
    """The same persons, in order, with the same scores within 1e-4."""
    return all(
        [n for n, _ in b] == [n for n, _ in a] and all(abs(x - y) < 1e-4 for (_, x), (_, y) in zip(b, a, strict=True))
        for b, a in zip(before, after, strict=True)
    )
