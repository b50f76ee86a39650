"""Finding, fetching and checking model weights."""

from __future__ import annotations

import hashlib
import logging
import shutil
import tempfile
import urllib.request
from pathlib import Path

from facesearch_common.specs import ModelSpec

log = logging.getLogger(__name__)


class WeightsError(RuntimeError):
    """The weights are missing or wrong; the message says what to do."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def resolve(spec: ModelSpec, explicit: Path | None, cache_dir: Path, download: bool = True) -> Path:
    """The checked weights file for `spec`: `explicit`, else the cache, else a download."""
    if explicit is not None:
        if not explicit.is_file():
            raise WeightsError(f"FACESEARCH_WEIGHTS={explicit} does not exist or is not a file")
        _check(spec, explicit)
        return explicit
    cached = cache_dir / spec.weights_file
    if cached.is_file():
        _check(spec, cached)
        return cached
    if not spec.weights_url or not download:
        raise WeightsError(
            f"no weights for model {spec.name!r}: set FACESEARCH_WEIGHTS to the path of "
            f"{spec.weights_file} (sha256 {spec.weights_sha256 or 'not pinned'})"
        )
    _download(spec, cached)
    return cached


def _check(spec: ModelSpec, path: Path) -> None:
    if not spec.weights_sha256:
        return
    actual = sha256_of(path)
    if actual != spec.weights_sha256:
        raise WeightsError(
            f"{path} has sha256 {actual}, but model {spec.name!r} needs {spec.weights_sha256}: "
            "wrong or corrupted weights file"
        )


def _download(spec: ModelSpec, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading weights", extra={"model": spec.name, "url": spec.weights_url})
    try:
        with (
            tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp,
            urllib.request.urlopen(spec.weights_url, timeout=60) as response,
        ):
            shutil.copyfileobj(response, tmp)
        partial = Path(tmp.name)
        _check(spec, partial)
    except WeightsError:
        Path(tmp.name).unlink(missing_ok=True)
        raise
    except OSError as exc:
        Path(tmp.name).unlink(missing_ok=True)
        raise WeightsError(
            f"cannot download the weights of model {spec.name!r} from {spec.weights_url} ({exc}). "
            f"Download {spec.weights_file} elsewhere and set FACESEARCH_WEIGHTS to its path, "
            f"or pick another model with FACESEARCH_MODEL"
        ) from exc
    partial.replace(target)
