"""The request log is Envoy's access log: one JSON line a call, REST and
gRPC, answered by a gateway or refused at the edge, with the tenant from
the verified token. The gateways log only the calls they refuse, with the
reason; a call they answer costs them no line (it is Envoy's)."""

from __future__ import annotations

import json
import time

import grpc
import pytest

from devkit import lfw
from devkit.client import grpc_search, grpc_stub

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]

FLUSH_S = 1.0  # the Procfile's --file-flush-interval-msec


def logged(stack, program: str) -> list[dict]:
    """The JSON objects `program` has written so far."""
    events = []
    for line in (stack.logs / f"{program}.log").read_text().splitlines():
        if line.startswith("{"):
            events.append(json.loads(line))
    return events


def requests_to(
    stack, path: str, count: int, tenants: set[str | None] | None = None, timeout_s: float = 10 * FLUSH_S
) -> list[dict]:
    """Envoy's request lines for `path` (of these `tenants` only: the stack
    is shared with other tests), once `count` have been flushed."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = [
            e
            for e in logged(stack, "envoy")
            if e.get("event") == "request" and e["path"] == path and (tenants is None or e["tenant"] in tenants)
        ]
        if len(found) >= count or time.monotonic() > deadline:
            return found
        time.sleep(FLUSH_S / 4)


def test_each_call_is_one_line_of_envoys_access_log(stack, rest):
    tenant = "request-log"
    token = stack.token(tenant)
    collection = rest.collection("request-log")  # the default tenant's
    rest_path = f"/v2/face-recognition/collections/{collection}"
    assert rest.ok(f"/collections/{collection}", method="GET")["data"]["id"] == collection

    crop = lfw.b64(lfw.crop(lfw.photos(lfw.identities()[0])[1]))
    grpc_search(grpc_stub(stack.grpc_target, token), [crop])  # no collections yet: no hits
    with pytest.raises(grpc.RpcError) as refused:
        grpc_search(grpc_stub(stack.grpc_target, "not-a-token"), [crop])
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED

    (got,) = requests_to(stack, rest_path, 1)
    assert got["method"] == "GET" and got["rpc"] == "/facesearch.v1.FaceSearch/RetrieveCollection"
    assert got["tenant"] == "default" and got["status"] == 200 and got["gateway"]
    assert isinstance(got["ms"], int) and got["response_bytes"] > 0

    # This test's two: another test's search flushed before them would
    # otherwise make up the count while the refused one is still buffered.
    searches = requests_to(stack, "/facesearch.v1.FaceSearch/SearchCrops", 2, {tenant, None})
    answered = [e for e in searches if e["tenant"] == tenant]
    assert [(e["grpc_status"], e["status"]) for e in answered] == [("OK", 200)]
    assert answered[0]["request_bytes"] > len(crop)
    # Refused at the edge: no tenant, never reached a gateway.
    edge = [e for e in searches if e["tenant"] is None]
    assert [(e["grpc_status"], e["gateway"]) for e in edge] == [("Unauthenticated", None)]
    # Envoy's probes of /healthz are not requests.
    assert not [e for e in logged(stack, "envoy") if e.get("path") == "/healthz"]


def test_a_gateway_logs_the_calls_it_refuses_and_not_those_it_answers(stack, rest):
    tenant = "refusal-log"
    stub = grpc_stub(stack.grpc_target, stack.token(tenant))
    crop = lfw.b64(lfw.crop(lfw.photos(lfw.identities()[0])[1]))
    grpc_search(stub, [crop])
    with pytest.raises(grpc.RpcError) as refused:
        grpc_search(stub, [crop], min_score=2.0)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    lines = [e for name in stack.gateways.names() for e in logged(stack, name) if e.get("tenant") == tenant]
    assert [(e["event"], e["rpc"], e["code"]) for e in lines] == [("rpc failed", "SearchCrops", "INVALID_ARGUMENT")]
    assert lines[0]["reason"]
