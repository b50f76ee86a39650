"""A model file served end to end: MobileFaceNet exported by `facesearch
model export` (network.onnx + model.toml) and named by FACESEARCH_MODEL,
in a stack of its own, answers the same searches with the same scores as
the built-in model in the session's stack (within 1e-4); the gateway tells
whether its scores are calibrated."""

from __future__ import annotations

import subprocess
import sys

import pytest

from devkit import lfw
from devkit.client import Rest, scrape_all
from devkit.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]
IDENTITIES = range(60, 66)


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


def test_a_model_file_serves_as_the_built_in_model(stack, rest, tmp_path):
    exported = subprocess.run(
        [sys.executable, "-m", "facesearch_common.cli", "model", "export", "mobilefacenet-casia", str(tmp_path / "m")],
        env={**stack.env(), "FACESEARCH_WEIGHTS": str(lfw.MOBILEFACENET)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert exported.returncode == 0, exported.stderr
    toml = tmp_path / "m" / "model.toml"
    assert f"FACESEARCH_MODEL={toml}" in exported.stdout

    built_in = answers(rest, enrolled(rest))
    env = {"FACESEARCH_MODEL": str(toml), "FACESEARCH_YUNET_WEIGHTS": str(lfw.YUNET)}
    with Stack(tmp_path / "stack", env, gateway_count=1).running() as served:
        from_file = answers(Rest(served.rest, served.token()), enrolled(Rest(served.rest, served.token())))
        calibrated = scrape_all(served.gateways.metrics_ports)
    assert sum(bool(a) for a in built_in) >= 5
    for before, after in zip(built_in, from_file, strict=True):
        assert [n for n, _ in before] == [n for n, _ in after]
        assert all(abs(a - b) < 1e-4 for (_, a), (_, b) in zip(before, after, strict=True)), (before, after)
    assert calibrated[("facesearch_score_calibrated", (("model", "mobilefacenet-casia-onnx"),))] == 1
