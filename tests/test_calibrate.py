"""`facesearch calibrate` against the running service: only an admin token
may use the calls it makes, too little data is refused saying how much is
needed, and a dry run fits and reports on held-out persons without storing
anything. (Storing, and every gateway picking the fit up: test_model_file.py,
on a model served without a calibration.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import pytest

from devkit import lfw
from devkit.client import API, facesearch_calibrate
from devkit.stackenv import key_files
from facesearch_common import tokens

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]


def admin_token(stack) -> str:
    return tokens.create_token(key_files(stack.data_dir), "ops", 600, admin=True)


def calibrate(stack, folder: Path, token: str, *flags: str) -> subprocess.CompletedProcess:
    return facesearch_calibrate(stack.rest, folder, token, *flags)


def test_only_an_admin_token_calibrates(stack, tmp_path):
    plain = {"Authorization": f"Bearer {stack.token()}"}
    refused = httpx.get(f"{stack.rest}{API}/admin/calibration", headers=plain, timeout=30)
    assert (refused.status_code, refused.json()["error"]) == (403, "admin_only")
    ran = calibrate(stack, lfw.folder(tmp_path, range(0, 45)), stack.token())
    assert ran.returncode == 2 and "admin_only" in ran.stderr, ran.stderr


def test_too_little_data_is_refused_saying_how_much(stack, tmp_path):
    ran = calibrate(stack, lfw.folder(tmp_path, range(0, 12)), admin_token(stack))
    assert ran.returncode == 2, ran.stdout + ran.stderr
    assert "needs at least 40 persons, 20 of them with two or more photos" in ran.stderr
    assert "this has 12 persons" in ran.stderr


def test_a_dry_run_fits_and_reports_and_stores_nothing(stack, tmp_path):
    before = httpx.get(
        f"{stack.rest}{API}/admin/calibration", headers={"Authorization": f"Bearer {admin_token(stack)}"}, timeout=30
    ).json()["data"]
    assert before["source"] == "model" and before["calibrated"]
    ran = calibrate(stack, lfw.folder(tmp_path, range(100, 160)), admin_token(stack), "--dry-run")
    assert ran.returncode == 0, ran.stderr
    assert "fitted on" in ran.stdout and "genuine" in ran.stdout
    for title in ("1:1 on held-out persons", "1:N, fitted", "reliability, fitted", "1:N, now (model)"):
        assert title in ran.stdout, ran.stdout
    assert "--dry-run: nothing stored" in ran.stdout
    after = httpx.get(
        f"{stack.rest}{API}/admin/calibration", headers={"Authorization": f"Bearer {admin_token(stack)}"}, timeout=30
    ).json()["data"]
    assert after == before
