"""The web page at ``/`` in a real headless Chromium (Debian's chromium + chromium-driver, Selenium),
against a live server with the shipped default model. Skips where the browser is not installed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
from serving_helpers import KEY, live_server, post

from sentitune.config import ServeConfig

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip(f"needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)", allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra)")
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--window-size=1200,1600"]


@pytest.fixture(scope="module")
def api():
    # a batch limit of 2, so three lines take two batch requests and the page's chunking is exercised
    config = ServeConfig(api_keys=[KEY], max_text_chars=2000, max_batch_texts=2)
    with live_server(config) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, api):
    browser.get(api + "/")
    browser.execute_script("sessionStorage.clear()")
    browser.refresh()
    return browser


def wait_for(driver, predicate, timeout=60):
    return WebDriverWait(driver, timeout).until(lambda d: predicate(d))


def element(driver, element_id):
    return driver.find_element(By.ID, element_id)


def use_key(driver, key):
    element(driver, "key").send_keys(key)
    element(driver, "save-key").click()


def analyze_one(driver, text):
    box = element(driver, "text")
    box.clear()
    box.send_keys(text)
    element(driver, "analyze").click()


def message(driver) -> str:
    return wait_for(driver, lambda d: element(d, "message").text.strip())


def test_page_is_self_contained_and_needs_no_key(api):
    r = httpx.get(api + "/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert not re.search(r"""(src|href)=["']?(https?:)?//|@import|url\(""", r.text)  # nothing loaded from elsewhere
    assert "/api/v1/analyze/batch" in r.text and "sessionStorage" in r.text and "localStorage" not in r.text


def test_missing_and_wrong_key_are_messages(page):
    analyze_one(page, "I love it")
    assert "Enter your API key" in message(page)
    assert not element(page, "result").is_displayed()
    use_key(page, "not-the-key")
    analyze_one(page, "I love it")
    wait_for(page, lambda d: "401" in element(d, "message").text)
    assert "invalid API key" in element(page, "message").text and "Check the API key" in element(page, "message").text
    assert page.execute_script("return sessionStorage.getItem('sentitune-key')") == "not-the-key"
    assert page.execute_script("return localStorage.length") == 0


def test_single_texts_show_label_and_calibrated_confidence(page, api):
    use_key(page, KEY)
    for text, expected in [("I absolutely love this product!", "POSITIVE"), ("Terrible service, never again.", "NEGATIVE")]:
        analyze_one(page, text)
        wait_for(page, lambda d, expected=expected: element(d, "label").text == expected)
        confidence = post(api, "/api/v1/analyze", {"text": text}).json()["confidence"]
        assert element(page, "confidence").text == f"{100 * confidence:.1f}% confident"
        width = page.execute_script("return document.getElementById('fill').style.width")
        assert width == f"{100 * confidence:.1f}%"
    assert element(page, "message").text == ""


def test_pasted_lines_give_table_shares_chart_and_csv(page, api, tmp_path):
    use_key(page, KEY)
    lines = ["Wonderful film, I loved every minute.", "It broke after a day.", "What a waste of money."]
    element(page, "lines").send_keys("\n".join(lines))
    element(page, "analyze-batch").click()
    wait_for(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#results tbody tr")) == 3)
    cells = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
             for tr in page.find_elements(By.CSS_SELECTOR, "#results tbody tr")]
    expected = post(api, "/api/v1/analyze/batch", {"texts": lines[:2]}).json()["results"]
    expected += post(api, "/api/v1/analyze/batch", {"texts": lines[2:]}).json()["results"]
    assert [c[1] for c in cells] == lines
    assert [c[2] for c in cells] == [r["predicted_sentiment"] for r in expected] == ["POSITIVE", "NEGATIVE", "NEGATIVE"]
    shares = {s.get_attribute("data-label"): s.text for s in page.find_elements(By.CSS_SELECTOR, "#shares .share")}
    assert shares == {"POSITIVE": "POSITIVE: 33.3% (1)", "NEGATIVE": "NEGATIVE: 66.7% (2)"}
    assert len(page.find_elements(By.CSS_SELECTOR, "#chart rect")) == 2
    csv = page.execute_script("return await (await fetch(document.getElementById('download').href)).text()")
    assert csv.splitlines()[0] == "text,label,confidence" and csv.splitlines()[2].startswith("It broke after a day.,NEGATIVE,")
    assert element(page, "progress").text == "3 of 3 scored"
    shot = tmp_path / "page.png"
    page.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


@pytest.mark.parametrize("name, content", [
    ("reviews.csv", 'id,stars,review\n1,5,"Great, works perfectly"\n2,1,"Awful. ""Never"" again"\n'),
    ("reviews.jsonl", "\n".join(json.dumps(r) for r in [{"id": 1, "review": "Great, works perfectly"},
                                                         {"id": 2, "review": 'Awful. "Never" again'}])),
])
def test_a_dropped_file_finds_its_text_column(page, tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    element(page, "file").send_keys(str(path))
    wait_for(page, lambda d: element(d, "lines").get_attribute("value"))
    assert element(page, "lines").get_attribute("value").splitlines() == ["Great, works perfectly", 'Awful. "Never" again']

