"""`facesearch enroll` against the running stack, as an operator runs it: a
folder of persons into a new collection, failures reported with their
reasons and a status that says so, a second run that enrolls nothing twice,
Ctrl-C that stops cleanly and a run after it that completes, and a CSV
manifest with Verifik's person fields."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from devkit import lfw
from devkit.client import Rest

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]
FACESEARCH = Path(sys.executable).parent / "facesearch"


def folder(root: Path, names: list[str]) -> Path:
    for name in names:
        (root / name).mkdir(parents=True)
        lfw.crop(lfw.photos(name)[0], side=140).save(root / name / "1.jpg")
    return root


def enroll(stack, source: Path, collection: str, *extra: str, wait: bool = True) -> subprocess.Popen:
    command = [str(FACESEARCH), "enroll", str(source), "--collection", collection, "--url", stack.rest, *extra]
    env = {**os.environ, "FACESEARCH_TOKEN": stack.token()}
    # In the source's folder, where the default report lands.
    process = subprocess.Popen(
        command, env=env, cwd=source.parent, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if wait:
        process.wait(timeout=600)
    return process


def names_in(rest: Rest, collection_name: str) -> list[str]:
    collections = rest.ok("/collections", method="GET", limit=100)["data"]
    (collection,) = [c["id"] for c in collections if c["name"] == collection_name]
    found, page = [], 1
    while True:
        answer = rest.ok("/persons", method="GET", collection=collection, page=page, limit=100)
        found += [p["name"] for p in answer["data"]]
        if page >= answer["pagination"]["pages"]:
            return found
        page += 1


def test_a_folder_is_enrolled_failures_are_reported_and_a_rerun_adds_nothing(stack, rest, tmp_path):
    good = lfw.identities()[20:26]
    source = folder(tmp_path / "people", good)
    (source / "blank").mkdir()
    Image.new("RGB", (160, 160), (128, 128, 128)).save(source / "blank" / "1.jpg")
    (source / "missing").mkdir()
    (source / "missing" / "1.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (source / "huge").mkdir()
    (source / "huge" / "1.jpg").write_bytes(os.urandom(13 << 20))  # 17 MiB once base64: over the API's limit
    report = tmp_path / "report.jsonl"

    first = enroll(stack, source, "enroll-folder", "--create", "--workers", "3", "--report", str(report))
    out = first.stdout.read()
    assert first.returncode == 1, out  # something failed
    reasons = {r["name"]: r["reason"] for r in map(json.loads, report.read_text().splitlines())}
    assert reasons == {"blank": "no_face", "missing": "unreadable_file", "huge": "too_large"}, out
    assert f"{len(good)} enrolled" in out
    assert sorted(names_in(rest, "enroll-folder")) == sorted(good)

    again = enroll(stack, source, "enroll-folder", "--report", str(report))
    out = again.stdout.read()
    assert again.returncode == 1 and "0 enrolled in" in out and f"{len(good)} already there" in out, out
    assert sorted(names_in(rest, "enroll-folder")) == sorted(good)  # nothing twice


def test_ctrl_c_stops_cleanly_and_the_next_run_completes(stack, rest, tmp_path):
    names = lfw.identities()[30:70]
    source = folder(tmp_path / "people", names)
    run = enroll(stack, source, "enroll-resumed", "--create", "--workers", "1", wait=False)
    deadline = time.monotonic() + 120
    while len(names_in_or_none(rest, "enroll-resumed")) < 3:
        assert time.monotonic() < deadline, "no enrollment started"
        time.sleep(0.2)
    run.send_signal(signal.SIGINT)
    assert run.wait(timeout=60) == 130, run.stdout.read()
    partial = names_in(rest, "enroll-resumed")
    assert 3 <= len(partial) < len(names)

    rerun = enroll(stack, source, "enroll-resumed")
    out = rerun.stdout.read()
    assert rerun.returncode == 0, out
    assert f"{len(names) - len(partial)} enrolled" in out and f"{len(partial)} already there" in out, out
    enrolled = names_in(rest, "enroll-resumed")
    assert sorted(enrolled) == sorted(names)  # each once


def names_in_or_none(rest: Rest, collection_name: str) -> list[str]:
    try:
        return names_in(rest, collection_name)
    except ValueError:  # the collection is not made yet
        return []


def test_a_csv_manifest_carries_verifiks_person_fields(stack, rest, tmp_path):
    name = lfw.identities()[80]
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, photo in enumerate(lfw.photos(name)[:2]):
        lfw.crop(photo, side=140).save(photos / f"{i}.jpg")
    manifest = tmp_path / "persons.csv"
    manifest.write_text(
        "name,images,gender,date_of_birth,nationality,notes\n"
        f"{name},photos/0.jpg;photos/1.jpg,M,1961-02-03,US,from a manifest\n"
    )
    done = enroll(stack, manifest, "enroll-manifest", "--create", "--report", str(tmp_path / "r.jsonl"))
    assert done.returncode == 0, done.stdout.read()
    collections = rest.ok("/collections", method="GET", limit=100)["data"]
    (collection,) = [c["id"] for c in collections if c["name"] == "enroll-manifest"]
    (person,) = rest.ok("/persons", method="GET", collection=collection)["data"]
    assert (person["name"], person["gender"], person["date_of_birth"], person["nationality"], person["notes"]) == (
        name,
        "M",
        "1961-02-03",
        "US",
        "from a manifest",
    )
    assert len(person["thumbnails"]) == 2
