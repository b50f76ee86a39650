"""The web console at /console/, through Envoy, driven in a real browser
(headless Chromium, Debian's chromium and chromium-driver, with Selenium):
log in with a token, create a collection, enroll a real lfw-dev person,
search with a crop of another photo, and see that person first.

CONSOLE_SCREENSHOT=path keeps a screenshot of the search page there (the
README's is made so)."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import Select, WebDriverWait

from devkit import lfw

pytestmark = [pytest.mark.e2e, pytest.mark.lfw]


@pytest.fixture
def browser():
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "Chromium is needed for the console test (make deps installs it)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield browser
    finally:
        browser.quit()


def until_status(browser, text: str) -> None:
    """Until the status line says `text`; an error it shows instead fails at once."""

    def said(b) -> bool:
        line = b.find_element(By.ID, "status")
        assert "error" not in (line.get_attribute("class") or ""), line.text
        return text in line.text

    try:
        WebDriverWait(browser, 60).until(said)
    except TimeoutException:
        said_instead = browser.find_element(By.ID, "status").text
        raise AssertionError(f"the status line says {said_instead!r}, not {text!r}") from None


def test_the_console_is_served_without_a_token_and_the_api_still_needs_one(stack):
    page = httpx.get(f"{stack.rest}/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "console.js" in page.text
    script = httpx.get(f"{stack.rest}/console/console.js")
    assert script.status_code == 200 and "/v2/face-recognition" in script.text
    assert httpx.get(f"{stack.rest}/console").headers["location"].endswith("/console/")
    assert httpx.get(f"{stack.rest}/v2/face-recognition/collections").status_code == 401


def test_an_operator_enrolls_and_finds_a_person_in_the_browser(stack, browser, tmp_path):
    name = lfw.identities()[0]
    photo, probe = tmp_path / "photo.jpg", tmp_path / "crop.jpg"
    lfw.portrait(lfw.photos(name)[0]).save(photo)
    lfw.crop(lfw.photos(name)[1]).save(probe)

    browser.get(f"{stack.rest}/console/")
    browser.find_element(By.ID, "token").send_keys(stack.token())
    browser.find_element(By.ID, "save-token").click()
    until_status(browser, "collection(s)")

    collection = f"console-{uuid.uuid4().hex[:8]}"
    browser.find_element(By.ID, "new-collection-name").send_keys(collection)
    browser.find_element(By.ID, "create-collection").click()
    until_status(browser, f"created {collection}")
    chosen = browser.find_element(By.CSS_SELECTOR, "#collections li.selected")
    assert chosen.text == collection

    browser.find_element(By.ID, "enroll-name").send_keys(name)
    browser.find_element(By.ID, "enroll-files").send_keys(str(photo))
    browser.find_element(By.ID, "enroll").click()
    until_status(browser, f"enrolled {name}")
    cards = browser.find_elements(By.CSS_SELECTOR, "#persons li .name")
    assert [c.text for c in cards] == [name]
    assert browser.find_element(By.CSS_SELECTOR, "#persons li img").get_attribute("src").startswith("data:image/jpeg")

    browser.find_element(By.ID, "search-file").send_keys(str(probe))
    Select(browser.find_element(By.ID, "search-kind")).select_by_value("crop")
    browser.find_element(By.ID, "search").click()
    until_status(browser, "match(es)")
    first = browser.find_element(By.CSS_SELECTOR, "#results li")
    assert first.find_element(By.CLASS_NAME, "name").text == name
    assert 0.5 <= float(first.find_element(By.CLASS_NAME, "score").text) <= 1
    assert browser.find_element(By.ID, "searched").text == "1 face(s) searched"

    shot = Path(os.environ.get("CONSOLE_SCREENSHOT") or tmp_path / "console.png")
    assert browser.save_screenshot(str(shot)) and shot.read_bytes()[:4] == b"\x89PNG"


def test_the_console_shows_an_api_refusal(stack, browser):
    browser.get(f"{stack.rest}/console/")
    browser.find_element(By.ID, "token").send_keys("not-a-token")
    browser.find_element(By.ID, "save-token").click()
    status = WebDriverWait(browser, 30).until(seen.visibility_of_element_located((By.CSS_SELECTOR, "#status.error")))
    assert "invalid_token" in status.text
