"""The images Kubernetes runs: `make images` (devkit/images.py) builds every
facesearch/* image the manifests name, and the gateway's and the indexer's,
built here with buildah on base images made here, start from their
entrypoints against the local stack and serve."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest

from devkit import images, lfw
from devkit.client import grpc_search, grpc_stub
from devkit.stack import serving
from devkit.stackenv import ROOT, free_port, key_files
from facesearch.v1 import facesearch_pb2 as pb

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]


def test_the_images_built_are_those_the_manifests_name():
    named = set()
    for manifest in (ROOT / "deploy" / "k8s").rglob("*.yaml"):
        named |= set(re.findall(r"image:\s*(facesearch/\S+)", manifest.read_text()))
    assert named == set(images.IMAGES)


def entrypoint(image: str) -> list[str]:
    found = subprocess.run(
        ["buildah", "inspect", "--type", "image", image], check=True, capture_output=True, text=True
    ).stdout
    config = json.loads(found)["OCIv1"]["config"]
    return [*config.get("Entrypoint", []), *(config.get("Cmd") or [])]


def started(image: str, env: dict[str, str], volumes: list[str], log: Path) -> tuple[subprocess.Popen, str]:
    """The image's entrypoint under `buildah run` (this machine's network), as its own process group."""
    container = subprocess.run(["buildah", "from", image], check=True, capture_output=True, text=True).stdout.strip()
    command = ["buildah", "run", *images.ISOLATION]
    for key, value in env.items():
        command += ["--env", f"{key}={value}"]
    for volume in volumes:
        command += ["-v", volume]
    command += [container, "--", *entrypoint(image)]
    process = subprocess.Popen(command, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    return process, container


def stop(process: subprocess.Popen, container: str) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    subprocess.run(["buildah", "rm", container], check=False, capture_output=True)


def wait_serving(address: str, process: subprocess.Popen, log: Path, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not serving(address):
        assert process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"{address} not serving:\n{log.read_text()[-3000:]}"
        time.sleep(0.5)


def test_the_gateway_and_indexer_images_serve_the_local_stack(stack, rest, tmp_path):
    base = images.bases(local=True)
    for image in ("facesearch/gateway:0.1.0", "facesearch/indexer:0.1.0"):
        images.build(image, base)

    collection = rest.collection("images")
    name = lfw.identities()[9]
    person = rest.enroll(name, lfw.photos(name)[0], [collection])
    env = stack.env()
    indexer_address, gateway_address = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    shared = {"DATABASE_URL": env["DATABASE_URL"], "FACESEARCH_LOG_LEVEL": "INFO"}
    indexer, indexer_container = started(
        "localhost/facesearch/indexer:0.1.0",
        {
            **shared,
            "INDEXER_ADDRESS": indexer_address,
            "INDEXER_NAME": indexer_address,
            "INDEXER_ADDRESSES": indexer_address,
            "INDEXER_METRICS_PORT": "0",
        },
        [],
        tmp_path / "indexer.log",
    )
    keys = key_files(stack.data_dir).jwks.parent
    gateway, gateway_container = started(
        "localhost/facesearch/gateway:0.1.0",
        {
            **shared,
            "GATEWAY_ADDRESS": gateway_address,
            "GATEWAY_METRICS_PORT": "0",
            "INDEXER_ADDRESSES": indexer_address,
            "EMBEDDER_URL": env["EMBEDDER_URL"],
            "REDIS_URL": env["REDIS_URL"],
            "FACESEARCH_MODEL": env["FACESEARCH_MODEL"],
            "FACESEARCH_JWKS": "/keys/jwks.json",
        },
        [f"{keys}:/keys:ro"],
        tmp_path / "gateway.log",
    )
    try:
        wait_serving(indexer_address, indexer, tmp_path / "indexer.log")
        wait_serving(gateway_address, gateway, tmp_path / "gateway.log")
        # A search through the images' gateway and indexer finds the person enrolled through the stack.
        answer = grpc_search(
            grpc_stub(gateway_address, stack.token()),
            [lfw.b64(lfw.crop(lfw.photos(name)[1]))],
            collection_id=collection,
        )
        assert [p.id for p in answer.data][:1] == [person["id"]]
        with pytest.raises(grpc.RpcError) as refused:  # the image's gateway checks tokens too
            grpc_stub(gateway_address).ListCollections(pb.ListCollectionsRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    finally:
        stop(gateway, gateway_container)
        stop(indexer, indexer_container)
