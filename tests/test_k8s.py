"""deploy/k8s: both overlays render (kustomize), validate offline against the
Kubernetes schemas (kubernetes-validate --strict), and hang together: every
Service selects a pod and targets a port it has, probes use declared ports,
referenced ConfigMap keys exist, images are pinned, pods run as non-root
with requests and limits, and Envoy's config is the local one."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy.envoy import render
from devkit.stackenv import ROOT
from gateway.config import Settings as GatewaySettings
from indexer.config import Settings as IndexerSettings

OVERLAYS = ["cpu", "gpu"]
WORKLOADS = {"Deployment", "StatefulSet"}
# Created by the operator (README), never committed: it holds key material.
EXTERNAL_SECRETS = {"facesearch-jwt"}
# Created by CloudNativePG for the Cluster (postgres.yaml).
DATABASE_SECRET = "facesearch-db-app"


def kustomize(overlay: str) -> list[dict]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is needed to render kustomize overlays (make deps installs it)"
    out = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request, tmp_path_factory) -> tuple[str, list[dict], Path]:
    docs = kustomize(request.param)
    path = tmp_path_factory.mktemp("k8s") / f"{request.param}.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    return request.param, docs, path


def pods(docs):
    for d in docs:
        if d["kind"] in WORKLOADS:
            yield d, d["spec"]["template"]


def containers(docs, init: bool = False):
    for workload, template in pods(docs):
        for c in template["spec"]["containers"] + (template["spec"].get("initContainers", []) if init else []):
            yield workload, template, c


def test_every_manifest_validates_strictly(rendered):
    _, docs, path = rendered
    validator = Path(sys.executable).parent / "kubernetes-validate"
    run = subprocess.run(
        [str(validator), "--strict", "--quiet", "-k", "1.31.0", str(path)], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert {d["kind"] for d in docs} >= {"Deployment", "StatefulSet", "Service", "ConfigMap", "HorizontalPodAutoscaler"}


def test_every_service_selects_a_pod_and_targets_its_ports(rendered):
    _, docs, _ = rendered
    for service in (d for d in docs if d["kind"] == "Service"):
        selector = service["spec"]["selector"]
        matched = [t for _, t in pods(docs) if selector.items() <= t["metadata"]["labels"].items()]
        assert matched, f"Service {service['metadata']['name']} selects no pod"
        declared = {p.get("name") for t in matched for c in t["spec"]["containers"] for p in c["ports"]} | {
            p["containerPort"] for t in matched for c in t["spec"]["containers"] for p in c["ports"]
        }
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in declared, (service["metadata"]["name"], port)


def test_probes_use_declared_ports(rendered):
    _, docs, _ = rendered
    for workload, _, c in containers(docs):
        declared = {p["containerPort"] for p in c["ports"]} | {p["name"] for p in c["ports"]}
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = c.get(kind)
            if probe is None:
                continue
            action = next(v for k, v in probe.items() if k in ("httpGet", "tcpSocket", "grpc", "exec"))
            if "port" in action:
                assert action["port"] in declared, (workload["metadata"]["name"], kind, action)
        assert "readinessProbe" in c and "livenessProbe" in c, workload["metadata"]["name"]


def test_referenced_configs_exist(rendered):
    _, docs, _ = rendered
    config_maps = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    for workload, template, c in containers(docs):
        for source in c.get("envFrom", []):
            assert source["configMapRef"]["name"] in config_maps
        for volume in template["spec"].get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in config_maps, volume
            if "secret" in volume:
                assert volume["secret"]["secretName"] in EXTERNAL_SECRETS, volume
        for mount in c.get("volumeMounts", []):
            names = {v["name"] for v in template["spec"].get("volumes", [])} | {
                t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])
            }
            assert mount["name"] in names, (workload["metadata"]["name"], mount)
    settings = next(v for k, v in config_maps.items() if k == "facesearch-config")
    # Settings the services read must be named as their config.py names them.
    known = set(re.findall(r'alias="([A-Z_]+)"', "".join(p.read_text() for p in ROOT.glob("services/*/*/config.py"))))
    assert set(settings) <= known, set(settings) - known
    envoy = next(v for k, v in config_maps.items() if k.startswith("envoy-config"))
    assert "/etc/envoy/answers.lua" in envoy["envoy.yaml"] and "answers.lua" in envoy


def test_images_are_pinned_and_pods_locked_down(rendered):
    overlay, docs, _ = rendered
    for workload, template, c in containers(docs, init=True):
        name = workload["metadata"]["name"]
        # A release tag (1.2.3, v1.36.2, Triton's 25.10-py3), never `latest`.
        assert re.fullmatch(r"[\w./-]+:(v?\d+\.\d+(\.\d+)?[\w.-]*)", c["image"]), (name, c["image"])
        assert template["spec"]["securityContext"]["runAsNonRoot"] is True, name
        assert c["securityContext"]["allowPrivilegeEscalation"] is False, name
        assert {"cpu", "memory"} <= set(c["resources"]["requests"]) and set(c["resources"]["limits"]) >= {
            "cpu",
            "memory",
        }, name
    for served in ("triton", "indexer"):
        container = next(c for w, _, c in containers(docs) if w["metadata"]["name"] == served)
        assert container["resources"]["limits"].get("nvidia.com/gpu") == ("1" if overlay == "gpu" else None)


def test_triton_serves_the_repository_the_export_command_writes(rendered):
    _, docs, _ = rendered
    triton = next(t for w, t in pods(docs) if w["metadata"]["name"] == "triton")
    (export,) = triton["spec"]["initContainers"]
    (server,) = triton["spec"]["containers"]
    assert server["image"].startswith("nvcr.io/nvidia/tritonserver:")
    assert export["command"][:3] == ["python", "-m", "embedder.export"]
    out = export["command"][export["command"].index("--out") + 1]
    mounted = {m["name"]: m["mountPath"] for m in export["volumeMounts"]}
    assert {m["name"]: m["mountPath"] for m in server["volumeMounts"]}["models"] == mounted["models"] == out
    assert f"--model-repository={out}" in server["args"]
    settings = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "facesearch-config")
    assert settings["data"]["EMBEDDER_URL"].startswith("triton:")
    # No Python backend on any path: the project's embedder image only writes
    # the repository; nothing serves from it.
    serving = {c["image"].split(":")[0] for _, _, c in containers(docs)}
    assert "facesearch/embedder" not in serving, serving
    assert "$(EMBEDDER_MAX_BATCH)" in export["args"] and "$(EMBEDDER_QUEUE_DELAY_US)" in export["args"]


def test_indexers_are_replicated_derived_shards_of_a_replicated_database(rendered):
    _, docs, _ = rendered
    indexer = next(d for d in docs if d["kind"] == "StatefulSet" and d["metadata"]["name"] == "indexer")
    settings = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "facesearch-config")
    addresses = settings["data"]["INDEXER_ADDRESSES"].split(",")
    assert addresses == [f"indexer-{n}.indexer:50052" for n in range(indexer["spec"]["replicas"])]
    assert int(settings["data"]["INDEXER_REPLICAS"]) == 2 <= indexer["spec"]["replicas"]
    # No volume of its own: the shards are loaded from PostgreSQL.
    assert "volumeClaimTemplates" not in indexer["spec"]
    env = {e["name"]: e for e in indexer["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["INDEXER_NAME"]["value"] == "$(POD_NAME).indexer:50052"
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    budget = next(d for d in docs if d["kind"] == "PodDisruptionBudget" and d["metadata"]["name"] == "indexer")
    assert budget["spec"]["maxUnavailable"] == 1
    assert budget["spec"]["selector"]["matchLabels"] == indexer["spec"]["selector"]["matchLabels"]
    cluster = next(d for d in docs if d["kind"] == "Cluster")
    assert cluster["apiVersion"] == "postgresql.cnpg.io/v1" and cluster["spec"]["instances"] == 3
    assert cluster["metadata"]["name"] + "-app" == DATABASE_SECRET
    assert cluster["spec"]["bootstrap"]["initdb"]["database"] == "facesearch"
    for name in ("gateway", "indexer"):
        workload = next(d for d in docs if d["kind"] in WORKLOADS and d["metadata"]["name"] == name)
        env = {e["name"]: e for e in workload["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"] == {"name": DATABASE_SECRET, "key": "uri"}, name


def test_envoy_config_in_the_cluster_is_the_local_template(rendered):
    assert render.TARGET.read_text() == render.rendered(), (
        f"{render.TARGET.name} is stale: run python -m deploy.envoy.render"
    )
    _, docs, _ = rendered
    envoy = next(d["data"] for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("envoy-"))
    assert envoy["envoy.yaml"] == render.rendered()
    assert envoy["answers.lua"] == (ROOT / "deploy" / "envoy" / "answers.lua").read_text()


def test_every_service_is_scraped_on_the_port_it_serves_metrics_on(rendered):
    _, docs, _ = rendered
    # The services' own defaults (config.py) and Envoy's metrics listener.
    serves = {
        "gateway": GatewaySettings().metrics_port,
        "indexer": IndexerSettings().metrics_port,
        "envoy": render.IN_CLUSTER["metrics_port"],
        "triton": 8002,
    }
    scraped = {}
    for workload, template in pods(docs):
        notes = template["metadata"].get("annotations", {})
        if notes.get("prometheus.io/scrape") == "true":
            name = workload["metadata"]["name"]
            declared = {p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
            assert int(notes["prometheus.io/port"]) in declared, name
            scraped[name] = int(notes["prometheus.io/port"])
    assert scraped == serves


def metric_names() -> set[str]:
    """Every sample name the gateway and indexer can export."""
    from prometheus_client import REGISTRY

    import gateway.metrics  # noqa: F401  (registers the gateway's)
    from indexer.metrics import ShardCollector

    suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"], "gauge": [""]}
    stand_in = type("Follower", (), {"registry": {}, "applied": 0, "head": 0})()
    families = [*REGISTRY.collect(), *ShardCollector(stand_in).collect()]  # type: ignore[arg-type]
    return {f.name + s for f in families for s in suffixes.get(f.type, [""])}


def test_the_dashboard_reads_metrics_that_exist(rendered):
    _, docs, _ = rendered
    board = next(
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "grafana-dashboard-facesearch"
    )
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    exprs = [t["expr"] for p in json.loads(board["data"]["facesearch.json"])["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"\bfacesearch_\w+", e)}
    assert used and used <= metric_names(), used - metric_names()
    assert any("envoy_" in e for e in exprs) and any("nv_inference" in e for e in exprs)
