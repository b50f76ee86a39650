"""`make run`: the whole stack in the foreground on loopback.

Runs the Procfile's entries with honcho, prints the URL once Envoy reports
every part healthy, and stops everything (by process group) on Ctrl-C.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import httpx
from honcho.manager import Manager
from honcho.printer import Printer

from devkit import lfw
from devkit.stackenv import ROOT, Indexers, Ports, environment, key_files, processes
from facesearch_common.specs import DEFAULT_MODEL, YUNET, get_spec


def choose_model(env: dict[str, str], data_dir: Path) -> None:
    """Fail early, with a useful message, when the model's weights are missing."""
    from embedder import weights  # torch-free import path; only resolves files

    name = env.setdefault("FACESEARCH_MODEL", DEFAULT_MODEL)
    explicit = Path(env["FACESEARCH_WEIGHTS"]) if env.get("FACESEARCH_WEIGHTS") else None
    try:
        weights.resolve(get_spec(name), explicit, data_dir / "models")
        return
    except (weights.WeightsError, ValueError) as exc:
        problem = str(exc)
    fallback = lfw.evaluation_model()
    if "FACESEARCH_MODEL" not in os.environ and explicit is None and lfw.MOBILEFACENET.is_file():
        print(
            f"run: {problem}\nrun: falling back to {fallback['FACESEARCH_MODEL']} with the evaluation weights at "
            f"{lfw.MOBILEFACENET} (set FACESEARCH_MODEL to choose)",
            file=sys.stderr,
        )
        env.update(fallback)
        return
    sys.exit(f"run: {problem}")


def choose_detector(env: dict[str, str], data_dir: Path) -> None:
    """YuNet's weights: the variable's file, the cache or a download; where
    none of them can be had, the copy this project's machines carry."""
    from embedder import weights

    if env.get("FACESEARCH_YUNET_WEIGHTS"):
        return
    try:
        weights.resolve(YUNET, None, data_dir / "models", download=False)
        return
    except weights.WeightsError:
        pass
    if lfw.YUNET.is_file():
        print(f"run: using YuNet's weights at {lfw.YUNET} (set FACESEARCH_YUNET_WEIGHTS to choose)", file=sys.stderr)
        env["FACESEARCH_YUNET_WEIGHTS"] = str(lfw.YUNET)


def announce_when_healthy(url: str, data_dir: Path, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                print(
                    f"\n  FaceSearch is ready: {url}/v2/face-recognition  (REST and gRPC)"
                    f"\n  Every call needs a token; get one for a tenant with:"
                    f"\n    FACESEARCH_DATA_DIR={data_dir} .venv/bin/facesearch token create --tenant demo --ttl 12h"
                    f"\n  and send it as `Authorization: Bearer <token>`.\n",
                    flush=True,
                )
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    print(f"\n  FaceSearch did not turn healthy within {timeout_s:.0f}s\n", flush=True)


def main() -> None:
    data_dir = Path(os.environ.get("FACESEARCH_DATA_DIR", ROOT / ".data")).resolve()
    ports = Ports.from_env(os.environ)
    created = not key_files(data_dir).exist()
    indexers = Indexers.from_env(os.environ, ports)
    env = environment(ports, data_dir, indexers=indexers)  # creates the development key pair on first start
    if created:
        print(f"run: created the development JWT key pair in {key_files(data_dir).private_key.parent}", flush=True)
    choose_model(env, data_dir)
    choose_detector(env, data_dir)
    manager = Manager(Printer(sys.stdout))
    for name, (command, process_env) in processes(env, indexers).items():
        manager.add_process(name, command, env=process_env, cwd=str(ROOT))
    url = f"http://127.0.0.1:{ports.envoy}"
    threading.Thread(target=announce_when_healthy, args=(url, data_dir), daemon=True).start()
    manager.loop()
    sys.exit(manager.returncode)


if __name__ == "__main__":
    main()
