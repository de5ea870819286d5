"""The review page in a real browser: headless Chromium driven by Selenium against `medveil review`.

The server is the real command in a subprocess; the browser is Debian's
chromium with chromium-driver (`make browser` installs them; `make test` runs
it).  Screenshots are kept under test-artifacts/review/ (gitignored).  Without
a browser the tests skip and say how to get one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from medveil.review.overview import load
from medveil.store.audit import AuditStore
from review_run import PHI_WORDS, make_run

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "review"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.slow,  # a real browser against a real server
    pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                       reason="no headless browser: install Debian's chromium and chromium-driver (make browser)"),
]


@pytest.fixture(scope="module")
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1300,1600", "--hide-scrollbars"):
        options.add_argument(argument)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    driver.set_page_load_timeout(120)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("browser") / "run")


class Server:
    """`medveil review` in a subprocess; its first line says where it listens."""

    def __init__(self, run, *extra: str) -> None:
        command = [sys.executable, "-m", "medveil", "review", str(run.workspace), "--port", "0",
                   "--key-file", str(run.key_file), "--profile", "tcia", "--output", str(run.output), *extra]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                        env={**os.environ, "PYTHONUNBUFFERED": "1"})
        line = self.process.stdout.readline()
        if not line.startswith("review page: "):
            self.stop()
            raise AssertionError(f"medveil review did not start: {line}")
        self.url = line.split(": ", 1)[1].strip()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()


@pytest.fixture
def served(base_run, tmp_path):
    run = base_run.copy_to(tmp_path / "run")
    server = Server(run)
    yield run, server
    server.stop()


def _shot(driver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _message(driver, expected: str) -> str:
    """The page's message list once it shows *expected* (a decision re-runs the pipeline: no time limit
    is asserted, the wait only bounds a hang)."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def shown(d):
        found = d.find_elements(By.ID, "messages")
        return found[0].text if found and expected in found[0].text else False
    # The page is replaced when a decision's answer arrives: an element found just before is stale.
    return WebDriverWait(driver, 300, poll_frequency=0.5,
                         ignored_exceptions=(StaleElementReferenceException,)).until(shown)


def _text(driver) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.TAG_NAME, "body").text


def test_summary_page_shows_the_run(browser, served):
    from selenium.webdriver.common.by import By

    run, server = served
    browser.get(server.url)
    _shot(browser, "summary")
    text = _text(browser)
    assert "Run summary" in text and "tcia" in text
    counts = browser.find_element(By.ID, "status-counts").text
    assert "written 2 2" in counts and "quarantined 2 2" in counts
    assert "removed X" in browser.find_element(By.ID, "actions").text
    reasons = browser.find_element(By.ID, "reasons").text
    assert "StudyInstanceUID missing" in reasons and "not a composite instance" in reasons
    assert len(browser.find_elements(By.CSS_SELECTOR, "#quarantine button.release")) == 2
    images = browser.find_elements(By.CSS_SELECTOR, "#masked img")
    assert len(images) == 2  # before and after of the masked CT
    assert all(browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth > 0", image)
               for image in images)
    assert browser.find_elements(By.CSS_SELECTOR, "#masked svg.boxes rect")
    background = browser.execute_script(
        "return getComputedStyle(document.querySelector('header')).backgroundColor")
    assert background == "rgb(22, 50, 79)"  # the style sheet came from the server itself
    assert not any(word in browser.page_source for word in PHI_WORDS)


def test_file_page_shows_before_after_and_header_differences(browser, served):
    from selenium.webdriver.common.by import By

    run, server = served
    state = load(run.workspace).masked[0]
    browser.get(server.url)
    from selenium.webdriver.support.ui import WebDriverWait

    browser.find_element(By.CSS_SELECTOR, f"#masked a[href='/file/{state.input_ref}']").click()
    from selenium.common.exceptions import StaleElementReferenceException

    WebDriverWait(browser, 300, poll_frequency=0.5,  # bounds a hang; no time is asserted
                  ignored_exceptions=(StaleElementReferenceException,)).until(
        lambda d: d.current_url.endswith(f"/file/{state.input_ref}") and d.find_elements(By.ID, "header-diff"))
    _shot(browser, "file")
    rows = browser.find_elements(By.CSS_SELECTOR, "#header-diff table tr")
    assert len(rows) > 10
    diff = browser.find_element(By.ID, "header-diff").text
    assert "PatientID (0010,0020) replaced" in diff and "InstitutionName (0008,0080) removed" in diff
    captions = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#file-masked figcaption")]
    assert any(c.startswith("before") for c in captions) and any(c.startswith("after") for c in captions)
    assert not any(word in browser.page_source for word in PHI_WORDS)


def test_quarantine_release_after_a_fix_and_drop_end_to_end(browser, served):
    from selenium.webdriver.common.by import By

    run, server = served
    view = load(run.workspace)
    fixable = next(f.input_ref for f in view.quarantined if "StudyInstanceUID" in f.reason)
    junk = next(f.input_ref for f in view.quarantined if "not a composite instance" in f.reason)

    browser.get(server.url)
    browser.find_element(By.CSS_SELECTOR, f"#q-{fixable} button.release").click()
    message = _message(browser, "still refused, kept in quarantine")
    assert "StudyInstanceUID missing" in message
    _shot(browser, "release-refused")

    copy = run.workspace / "quarantine" / f"{fixable}.dcm"  # the curator fixes the copy
    ds = pydicom.dcmread(copy)
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.4243"
    ds.save_as(copy)
    released_before = set(run.output.rglob("*.dcm"))
    browser.find_element(By.CSS_SELECTOR, f"#q-{fixable} button.release").click()
    _message(browser, "released into the release tree")
    browser.find_element(By.CSS_SELECTOR, f"#q-{junk} button.drop").click()
    _message(browser, ": dropped")
    _shot(browser, "after-decisions")

    assert "Nothing in quarantine." in browser.find_element(By.ID, "quarantine").text
    counts = browser.find_element(By.ID, "status-counts").text
    assert "written 2 3" in counts and "skipped 1 2" in counts
    new = set(run.output.rglob("*.dcm")) - released_before
    assert len(new) == 1 and str(pydicom.dcmread(new.pop()).PatientID) != "MRN0099123"
    with AuditStore.open(run.workspace / "audit.sqlite") as store:
        decided = [json.loads(e["detail"]) for e in store.event_rows() if e["category"] == "review-decision"]
    assert [d["decision"] for d in decided] == ["release-refused", "released", "dropped"]
    assert all(d["at"].endswith("Z") for d in decided)


def test_token_is_required_off_loopback_style(browser, base_run, tmp_path):
    run = base_run.copy_to(tmp_path / "run")
    server = Server(run, "--token", "auto")
    try:
        bare = server.url.split("?", 1)[0]
        browser.delete_all_cookies()
        browser.get(bare)
        assert "a token is required" in _text(browser)
        browser.get(server.url)  # the printed address carries the token once, then a cookie
        assert "Run summary" in _text(browser) and "token=" not in browser.current_url
        browser.get(bare)
        assert "Run summary" in _text(browser)
        _shot(browser, "token")
    finally:
        server.stop()
        browser.delete_all_cookies()
