"""Finding, fetching and checking model weights."""

from __future__ import annotations

import logging
import shutil
import tempfile
import urllib.request
from pathlib import Path

from facesearch_common.specs import ModelSpec, WeightsFile, sha256_of

log = logging.getLogger(__name__)


class WeightsError(RuntimeError):
    """The weights are missing or wrong; the message says what to do."""


def resolve(wanted: ModelSpec | WeightsFile, explicit: Path | None, cache_dir: Path, download: bool = True) -> Path:
    """The checked weights file: `explicit` (the file its variable names),
    else the cache, else a download."""
    source = wanted.weights_source if isinstance(wanted, ModelSpec) else wanted
    if explicit is None and isinstance(wanted, ModelSpec) and wanted.network_file:
        explicit = Path(wanted.network_file)  # a model file names its network
    if explicit is not None:
        if not explicit.is_file():
            raise WeightsError(f"{source.variable}={explicit} does not exist or is not a file")
        _check(source, explicit)
        return explicit
    cached = cache_dir / source.file
    if cached.is_file():
        _check(source, cached)
        return cached
    if not source.url or not download:
        raise WeightsError(
            f"no weights for {source.name}: set {source.variable} to the path of "
            f"{source.file} (sha256 {source.sha256 or 'not pinned'})"
        )
    _download(source, cached)
    return cached


def _check(source: WeightsFile, path: Path) -> None:
    if not source.sha256:
        return
    actual = sha256_of(path)
    if actual != source.sha256:
        raise WeightsError(
            f"{path} has sha256 {actual}, but {source.name} needs {source.sha256}: wrong or corrupted weights file"
        )


def _download(source: WeightsFile, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading weights", extra={"weights": source.file, "url": source.url})
    try:
        with (
            tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp,
            urllib.request.urlopen(source.url, timeout=60) as response,
        ):
            shutil.copyfileobj(response, tmp)
        partial = Path(tmp.name)
        _check(source, partial)
    except WeightsError:
        Path(tmp.name).unlink(missing_ok=True)
        raise
    except OSError as exc:
        Path(tmp.name).unlink(missing_ok=True)
        raise WeightsError(
            f"cannot download the weights of {source.name} from {source.url} ({exc}). "
            f"Download {source.file} elsewhere and set {source.variable} to its path"
        ) from exc
    partial.replace(target)
