"""The search page in a real headless browser: Debian's chromium driven by selenium through
/usr/bin/chromedriver (nothing downloads a browser or driver). Upload a query, wait for the grid,
check k thumbnails, the expected top-1 and its marking; keep a screenshot as a test artifact."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
K = 5


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Server:
    """uvicorn on 127.0.0.1 in a thread, stopped on exit (bounded waits)."""

    def __init__(self, app) -> None:
        import uvicorn

        self.port = _free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    timeout_keep_alive=2))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start within 30 s")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@pytest.mark.slow
def test_search_page_in_headless_chromium(tiny_run, tmp_path, monkeypatch):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    import vireid
    from vireid.commands._common import load_run_config
    from vireid.retrieval.index import GalleryIndex
    from vireid.retrieval.service import create_app
    from vireid.retrieval.sources import records_from_run_dataset

    assert CHROMIUM.is_file() and CHROMEDRIVER.is_file(), "install Debian's chromium and chromium-driver (.ci/run does)"
    model = vireid.load(tiny_run)
    records, root = records_from_run_dataset(load_run_config(tiny_run), "visible")
    index = GalleryIndex.create(tmp_path / "g", fingerprint=model.fingerprint, model_name=model.model_name,
                                preprocessing=model.spec, records=records,
                                vectors=model.embed([r.path for r in records], "visible"), image_roots=[root])
    target_id, target = 4, records[3]  # ids start at 1
    img = Image.open(target.path)
    query = tmp_path / "query.png"
    img.resize((img.width * 2, img.height * 2)).save(query)

    monkeypatch.setenv("SE_OFFLINE", "true")  # selenium-manager must not fetch anything
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1280,900"):
        options.add_argument(flag)
    with _Server(create_app(index, model, token="")) as url:
        driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
        try:
            driver.set_page_load_timeout(30)
            driver.get(url + "/")
            WebDriverWait(driver, 30).until(lambda d: "gallery images" in d.find_element(By.ID, "health").text)
            driver.find_element(By.ID, "file").send_keys(str(query))
            driver.find_element(By.CSS_SELECTOR, "#modality option[value=visible]").click()
            k_box = driver.find_element(By.ID, "k")
            k_box.clear()
            k_box.send_keys(str(K))
            driver.find_element(By.ID, "identity").send_keys(target.identity)
            driver.find_element(By.ID, "search").click()
            WebDriverWait(driver, 60).until(
                lambda d: d.find_element(By.ID, "results").get_attribute("data-count") == str(K))
            WebDriverWait(driver, 30).until(lambda d: d.execute_script(
                "return [...document.querySelectorAll('#results img')].every(i => i.complete && i.naturalWidth > 0)"))
            hits = driver.find_elements(By.CSS_SELECTOR, "#results figure.hit")
            assert len(hits) == K
            assert hits[0].get_attribute("data-id") == str(target_id)
            assert "correct" in hits[0].get_attribute("class").split()
            for hit in hits:  # every other card is marked by its own identity
                expected = "correct" if hit.get_attribute("data-identity") == target.identity else "wrong"
                assert expected in hit.get_attribute("class").split()
            assert "#1" in hits[0].text and "cam " in hits[0].text
            shot = tmp_path / "search_page.png"
            assert driver.save_screenshot(str(shot))
        finally:
            driver.quit()
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copy(shot, ARTIFACTS / shot.name)
    assert Image.open(shot).size[0] >= 1000
