"""The console in a real browser: Debian's headless Chromium, driven by Selenium
through Debian's chromedriver, against ``herald serve --demo`` (a subprocess with
its embedded simulator) on 127.0.0.1.

Chromium and chromedriver come from ``scripts/peers`` (apt: chromium,
chromium-driver); nothing is downloaded at run time. Without them these tests
FAIL: a console nobody looked at in a browser is not tested. The browser may
resolve no name but loopback (``--host-resolver-rules``) and every page's
assets come from herald itself.

Screenshots of each page go to ``artifacts/console/`` at the repository's root
(``HERALD_ARTIFACTS`` elsewhere; gitignored), for people to look at.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from herald.guard.audit import AuditLog
from herald.signaling.policy import Category
from herald.signaling.policy.verdict import Action, Origin, Rule, Verdict

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("HERALD_ARTIFACTS", ROOT / "artifacts")) / "console"
#: Seconds any single wait may take before it counts as hung.
STEP = 20.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Demo:
    url: str
    api_key: str
    admin_key: str
    data: Path

    def herald(self, *argv: str) -> str:
        """A herald command on the demo's data directory (as an operator's shell)."""
        done = subprocess.run([sys.executable, "-m", "herald", *argv, "--data-dir",
                               str(self.data)], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def send(self, **fields: Any) -> str:
        body = {"to": "+447911123456", "from": "herald", "text": "hello", **fields}
        answer = httpx.post(f"{self.url}/v1/messages", json=body, timeout=STEP,
                            headers={"Authorization": f"Bearer {self.api_key}"})
        assert answer.status_code == 202, answer.text
        return str(answer.json()["id"])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    where = tmp_path_factory.mktemp("demo")
    http = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "herald", "serve", "--demo", "--http", f"127.0.0.1:{http}",
         "--smpp", f"127.0.0.1:{_free_port()}"],
        cwd=where, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        banner = ""
        deadline = time.monotonic() + 60
        assert server.stdout is not None
        while "Stop with Ctrl+C" not in banner:
            assert time.monotonic() < deadline and server.poll() is None, banner
            banner += server.stdout.readline()
        saved = dict(line.split("=", 1) for line in
                     (where / "herald-data" / "demo.env").read_text().splitlines()
                     if "=" in line and not line.startswith("#"))  # fmt: skip
        yield Demo(f"http://127.0.0.1:{http}", saved["HERALD_API_KEY"],
                   saved["HERALD_ADMIN_KEY"], where / "herald-data")
    finally:
        server.send_signal(signal.SIGTERM)
        server.communicate(timeout=30)


def _chromium(width: int = 1280, height: int = 900, *, phone: bool = False) -> WebDriver:
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        pytest.fail(f"{CHROMIUM} and {CHROMEDRIVER} are needed: run scripts/peers"
                    " (apt: chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-default-apps", "--disable-extensions",
                # only loopback resolves: a page that reached for a CDN would break
                "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"):  # fmt: skip
        options.add_argument(arg)
    if phone:  # a headless window is at least 500 px wide: emulate the phone's screen
        options.add_experimental_option("mobileEmulation", {"deviceMetrics": {
            "width": width, "height": height, "pixelRatio": 2.0}})
    try:
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    except WebDriverException as exc:
        pytest.fail(f"chromium did not start: {exc.msg}")
    driver.set_page_load_timeout(STEP)
    return driver


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    driver = _chromium()
    try:
        yield driver
    finally:
        driver.quit()


def _until(check: Callable[[], Any], what: str, timeout: float = STEP) -> Any:
    """Poll ``check`` until it returns something true (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check()
        except WebDriverException:
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"not reached in {timeout} s: {what}"
        time.sleep(0.1)


#: The tallest screenshot: a whole page up to this (a longer one is cut).
SHOT_HEIGHT = 4000


def _shot(driver: WebDriver, name: str) -> Path:
    """The whole page (the window made as tall as it for the shot), so that people
    see the forms below the fold; the phone's screen as it is."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = driver.get_window_size()
    tall = int(driver.execute_script("return document.documentElement.scrollHeight"))
    whole = size["width"] >= 1000 and tall > size["height"]
    if whole:
        driver.set_window_size(size["width"], min(tall + 100, SHOT_HEIGHT))
    try:
        assert driver.save_screenshot(str(path)), path
    finally:
        if whole:
            driver.set_window_size(size["width"], size["height"])
    return path


def _sign_in(driver: WebDriver, demo: Demo, key: str) -> None:
    driver.get(f"{demo.url}/console/login")
    driver.delete_all_cookies()  # each test signs in afresh
    driver.get(f"{demo.url}/console/login")
    field = driver.find_element(By.ID, "key")
    field.clear()
    field.send_keys(key)
    field.submit()
    # submit() returns before the answer: wait for the next page (signed in or
    # refused), or a get() that follows may leave before the cookie is set.
    _until(lambda: _gone(field), "the page after signing in")


def _gone(element: Any) -> bool:
    """Whether ``element``'s page has been replaced."""
    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    return False


def _text(driver: WebDriver, element_id: str) -> str:
    return str(driver.find_element(By.ID, element_id).text)


def _assets_were_local(driver: WebDriver, demo: Demo) -> None:
    entries = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)")
    assert entries, "the page loaded no assets?"
    assert all(e.startswith(demo.url + "/") for e in entries), entries


def test_the_console_works_from_the_keyboard(demo: Demo, browser: WebDriver) -> None:
    browser.get(f"{demo.url}/console/login")
    browser.delete_all_cookies()
    browser.get(f"{demo.url}/console/login")
    active = browser.switch_to.active_element  # the key field has the focus
    assert active.get_attribute("id") == "key"
    active.send_keys(demo.admin_key + Keys.ENTER)
    _until(lambda: browser.find_elements(By.ID, "total-accepted"), "the overview")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)  # the first stop: "Skip to content"
    assert browser.switch_to.active_element.text == "Skip to content"
    for _ in range(3):  # then the nav links: Overview, Messages, Accounts
        browser.switch_to.active_element.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Accounts"
    browser.switch_to.active_element.send_keys(Keys.ENTER)
    _until(lambda: browser.find_elements(By.ID, "accounts"), "the accounts page")


def test_revoking_the_key_sends_the_open_overview_to_the_sign_in(
    demo: Demo, browser: WebDriver
) -> None:
    issued = demo.herald("admin", "keys", "create", "night-shift", "--read-only")
    key = next(w for w in issued.split() if w.startswith("ha_"))
    _sign_in(browser, demo, key)
    _until(lambda: browser.find_elements(By.ID, "total-accepted"), "the overview")
    assert ">read-only<" in browser.page_source
    demo.herald("admin", "keys", "revoke", "night-shift")
    # the next poll (2 s) is refused; htmx follows its HX-Redirect to the sign-in
    _until(lambda: browser.current_url.endswith("/console/login"), "the sign-in page")


def test_a_wrong_key_is_refused_in_the_browser(demo: Demo, browser: WebDriver) -> None:
    _sign_in(browser, demo, demo.admin_key[:-4] + "AAAA")
    alert = _until(lambda: browser.find_element(By.CSS_SELECTOR, "p.error"), "an error")
    assert "not a valid admin key" in alert.text
    assert browser.current_url.endswith("/console/login")
    _shot(browser, "01-login-refused")


def test_sign_in_and_watch_the_overview_move(demo: Demo, browser: WebDriver) -> None:
    _sign_in(browser, demo, demo.admin_key)
    _until(lambda: browser.find_elements(By.ID, "total-accepted"), "the overview")
    _assets_were_local(browser, demo)
    before = int(_text(browser, "total-accepted"))
    as_of = _text(browser, "as-of")
    for _ in range(5):
        demo.send()
    # htmx polls every 2 s: the counters change in place, without a reload
    browser.execute_script("window.__same_page = true")
    _until(lambda: int(_text(browser, "total-accepted")) >= before + 5, "accepted counter")
    _until(lambda: _text(browser, "as-of") != as_of, "a fresh overview")
    _until(lambda: int(_text(browser, "total-delivered")) >= 1, "a receipt from the simulator")
    _until(lambda: "100.0 % of" in browser.find_element(By.CSS_SELECTOR, "td.delivery").text,
           "the connector's delivery rate")
    _until(lambda: re.match(r"\d+(\.\d+)? of 10000", browser.find_element(
        By.CSS_SELECTOR, "td.tps").text), "the connector's parts per second and its limit")
    assert browser.execute_script("return window.__same_page") is True
    _until(lambda: re.fullmatch(r"\d+(\.\d+)?", _text(browser, "rate-accepted")),
           "a rate per second")
    # the hour's and the day's charts, drawn from the samples taken since (every 5 s)
    _until(lambda: browser.find_elements(By.CSS_SELECTOR, "#chart-hour polyline.line-accepted"),
           "the last hour's chart")
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-day polyline.line-delivered")
    _until(lambda: "%" in browser.find_element(By.CSS_SELECTOR, "#countries td.delivery").text,
           "the delivery rate by country")
    _shot(browser, "02-overview")


def test_find_a_message_read_its_timeline_and_cancel_it(demo: Demo, browser: WebDriver) -> None:
    _sign_in(browser, demo, demo.admin_key)
    later = time.time() + 3600  # scheduled: it waits, so it can be cancelled
    waiting = demo.send(reference="browser-test", send_at=later)
    browser.get(f"{demo.url}/console/messages")
    browser.find_element(By.NAME, "reference").send_keys("browser-test")
    browser.find_element(By.CSS_SELECTOR, "form.search button").click()
    link = _until(lambda: browser.find_element(By.LINK_TEXT, waiting), "the search result")
    _shot(browser, "03-messages")
    link.click()
    _until(lambda: browser.find_elements(By.ID, "timeline"), "the message page")
    assert _text(browser, "status") == "accepted"
    assert "accepted" in _text(browser, "timeline")
    _shot(browser, "04-message")
    browser.find_element(By.XPATH, "//button[contains(., 'Cancel this message')]").click()
    _until(lambda: _text(browser, "status") == "cancelled", "the message cancelled")
    assert "cancelled" in _text(browser, "timeline")
    _shot(browser, "05-message-cancelled")


def test_disable_an_account_and_see_its_next_request_refused(
    demo: Demo, browser: WebDriver
) -> None:
    _sign_in(browser, demo, demo.admin_key)
    browser.get(f"{demo.url}/console/accounts")
    _until(lambda: browser.find_elements(By.ID, "accounts"), "the accounts page")
    _shot(browser, "06-accounts")
    browser.find_element(By.LINK_TEXT, "demo").click()
    _until(lambda: browser.find_elements(By.ID, "toggle-account"), "the account page")
    browser.find_element(By.ID, "toggle-account").click()
    _until(lambda: _text(browser, "account-state") == "disabled", "the account disabled")
    _shot(browser, "07-account-disabled")
    refused = httpx.post(f"{demo.url}/v1/messages", timeout=STEP,
                         json={"to": "+447911123456", "from": "herald", "text": "no"},
                         headers={"Authorization": f"Bearer {demo.api_key}"})
    assert refused.status_code == 401
    browser.find_element(By.ID, "toggle-account").click()  # enable it again
    _until(lambda: _text(browser, "account-state") == "enabled", "the account enabled")
    demo.send()


def test_drain_a_connector(demo: Demo, browser: WebDriver) -> None:
    _sign_in(browser, demo, demo.admin_key)
    browser.get(f"{demo.url}/console/connectors")
    browser.find_element(By.NAME, "reason").send_keys("browser test")
    browser.find_element(By.XPATH, "//button[contains(., 'Disable')]").click()
    _until(lambda: browser.find_element(By.CSS_SELECTOR, "td.routing").text
           == "disabled: browser test", "the connector disabled, with its reason")
    _shot(browser, "08-connector-disabled")
    browser.find_element(By.XPATH, "//button[contains(., 'Enable')]").click()
    _until(lambda: browser.find_element(By.CSS_SELECTOR, "td.routing").text == "on", "on")
    browser.find_element(By.LINK_TEXT, "Route explainer").click()
    browser.find_element(By.NAME, "account").send_keys("demo")
    browser.find_element(By.NAME, "to").send_keys("+447911123456")
    browser.find_element(By.CSS_SELECTOR, "form.search button").click()
    _until(lambda: _text(browser, "decision") == "sim (by the [[routes]] of herald.toml)",
           "the explained decision")
    _shot(browser, "09-route-explainer")
    browser.get(f"{demo.url}/console/audit")
    audit = _text(browser, "audit")
    assert "console:demo-admin connector.disable connector:sim" in audit
    assert "console:demo-admin connector.enable connector:sim" in audit
    # at 1,280 px the changes wrap: nothing of the table is beyond the right edge
    assert browser.execute_script("const box = document.getElementById('audit').parentElement;"
                                  " return box.scrollWidth <= box.clientWidth")
    _shot(browser, "10-audit")


def test_a_change_without_the_csrf_token_is_refused_in_the_browser(
    demo: Demo, browser: WebDriver
) -> None:
    _sign_in(browser, demo, demo.admin_key)
    browser.get(f"{demo.url}/console/connectors")
    # a form posted without the token (as another site's page would)
    browser.execute_script(
        "document.querySelectorAll('input[name=csrf]').forEach(e => e.remove());"
        "document.body.removeAttribute('hx-headers');")
    browser.find_element(By.XPATH, "//button[contains(., 'Disable')]").click()
    alert = _until(lambda: browser.find_element(By.CSS_SELECTOR, "p.error"), "a refusal")
    assert "CSRF" in alert.text
    _shot(browser, "11-csrf-refused")
    browser.get(f"{demo.url}/console/connectors")
    assert browser.find_element(By.CSS_SELECTOR, "td.routing").text == "on"


def test_the_fraud_page_shows_a_block(demo: Demo, browser: WebDriver) -> None:
    admin = {"Authorization": f"Bearer {demo.admin_key}"}
    changed = httpx.patch(f"{demo.url}/v1/admin/accounts/demo/fraud", headers=admin,
                          json={"deny": ["+1415555"]}, timeout=STEP)
    assert changed.status_code == 200, changed.text
    refused = httpx.post(f"{demo.url}/v1/verifications", json={"to": "+14155552671"},
                         headers={"Authorization": f"Bearer {demo.api_key}"}, timeout=STEP)
    assert refused.status_code == 403
    _sign_in(browser, demo, demo.admin_key)
    browser.find_element(By.LINK_TEXT, "Fraud").click()
    table = _until(lambda: browser.find_element(By.ID, "decisions"), "the decisions")
    assert "+14155552671" in table.text and "deny_list" in table.text
    _shot(browser, "14-fraud")
    browser.find_element(By.LINK_TEXT, "Billing").click()
    _until(lambda: browser.find_elements(By.ID, "margins"), "the billing page")
    _shot(browser, "15-billing")


def test_the_docs_and_a_phone_sized_overview(demo: Demo, browser: WebDriver) -> None:
    browser.get(f"{demo.url}/docs")
    _until(lambda: browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock"),
           "Swagger UI rendered from herald's own files")  # fmt: skip
    _assets_were_local(browser, demo)
    _shot(browser, "12-docs")
    phone = _chromium(390, 844, phone=True)
    try:
        _sign_in(phone, demo, demo.admin_key)
        _until(lambda: phone.find_elements(By.ID, "total-accepted"), "the overview")
        _shot(phone, "13-overview-phone")
        width, view = phone.execute_script(
            "return [document.documentElement.scrollWidth, window.innerWidth]")
        assert view == 390 and width <= view, f"the page is {width} px wide on a phone"
    finally:
        phone.quit()


def test_the_guard_page_shows_blocks_and_no_subscriber(demo: Demo, browser: WebDriver) -> None:
    # The guard's audit log where herald serve reads it (<data_dir>/guard-audit.jsonl),
    # as `herald guard proxy --audit` writes it; one record planted with what must
    # never show (an IMSI, an MSC address, a cell id, a location).
    now = time.time()
    with AuditLog(demo.data / "guard-audit.jsonl") as log:
        for rule in (Rule.CAT1, Rule.CAT1, Rule.RANGE_SWEEP):
            log.verdict(Verdict(Action.BLOCK, rule, Category.CAT1, f"{rule.value} reason", now,
                                "anyTimeInterrogation", Origin.FOREIGN, "3f9a0c1be2d4f5a6b7c8"))
        log.append("verdict", {"time": now, "action": "alert", "rule": "lookup-only",
                               "category": "sms", "reason": "cell 23415-1234-56789",
                               "subscriber": "234150999999999", "msc": "447700900999",
                               "location": "51.5072,-0.1276"})  # fmt: skip
    _sign_in(browser, demo, demo.admin_key)
    browser.find_element(By.LINK_TEXT, "Guard").click()
    def read() -> bool:  # on a loaded machine the log may be read in the background
        if "range-sweep" in browser.find_element(By.ID, "guard-verdicts").text:
            return True
        browser.refresh()
        return False

    _until(read, "the guard's blocks on the page")
    table = browser.find_element(By.ID, "guard-verdicts")
    assert "3f9a0c1be2d4f5a6b7c8" in table.text
    assert _text(browser, "guard-chain").startswith("intact")
    for secret in ("234150999999999", "447700900999", "56789", "51.5072"):
        assert secret not in browser.page_source, secret
    _assets_were_local(browser, demo)
    _shot(browser, "16-guard")


def test_top_up_an_account_and_see_bad_input_named(demo: Demo, browser: WebDriver) -> None:
    _sign_in(browser, demo, demo.admin_key)
    browser.get(f"{demo.url}/console/accounts/demo")
    field = _until(lambda: browser.find_element(By.ID, "amount"), "the account page")
    field.send_keys("12.50" + Keys.ENTER)  # the form is usable from the keyboard
    _until(lambda: "12.50 added to the balance." in browser.find_element(
        By.CSS_SELECTOR, "p.notice").text, "the top-up done")
    rate = browser.find_element(By.CSS_SELECTOR, "#settings-form input[name=rate_limit]")
    rate.clear()
    rate.send_keys("fast")
    browser.find_element(By.XPATH, "//button[contains(., 'Save settings')]").click()
    error = _until(lambda: browser.find_element(By.ID, "form-error"), "the refusal")
    assert "rate_limit: must be a number of messages per second or 'unlimited'" in error.text
    _shot(browser, "17-account-forms")
    audit = httpx.get(f"{demo.url}/v1/admin/audit", params={"target": "account:demo"},
                      headers={"Authorization": f"Bearer {demo.admin_key}"}, timeout=STEP)
    actions = [(e["actor"], e["action"]) for e in audit.json()["entries"]]
    assert ("console:demo-admin", "balance.top_up") in actions
    assert ("console:demo-admin", "account.update") not in actions  # refused: nothing changed


def test_replace_the_routing_rules_in_a_form(demo: Demo, browser: WebDriver) -> None:
    _sign_in(browser, demo, demo.admin_key)
    browser.get(f"{demo.url}/console/connectors")
    routes = _until(lambda: browser.find_element(By.CSS_SELECTOR, "#routes-form textarea"),
                    "the routes form")
    routes.send_keys('[[rule]]\nname = "uk-sim"\nprefixes = ["44"]\nfailover = ["sim2"]\n')
    browser.find_element(By.XPATH, "//button[contains(., 'Replace the routing rules')]").click()
    error = _until(lambda: browser.find_element(By.ID, "form-error"), "the refusal")
    assert "routes.rule[0]: names connectors herald.toml does not have: sim2" in error.text
    routes = browser.find_element(By.CSS_SELECTOR, "#routes-form textarea")
    text = routes.get_attribute("value")  # what was given stays in the form, to be corrected
    assert text is not None and 'failover = ["sim2"]' in text
    routes.clear()
    routes.send_keys(text.replace('"sim2"', '"sim"'))
    browser.find_element(By.XPATH, "//button[contains(., 'Replace the routing rules')]").click()
    _until(lambda: "The routing rules are replaced: 1 rules" in browser.find_element(
        By.CSS_SELECTOR, "p.notice").text, "the rules replaced")
    assert _text(browser, "rules") == "uk-sim"
    browser.execute_script("document.getElementById('routing-rules').scrollIntoView()")
    _shot(browser, "18-routes-form")
    browser.get(f"{demo.url}/console/routes/explain?account=demo&to=%2B447911123456")
    assert _text(browser, "decision") == "sim (by rule uk-sim)"
    browser.get(f"{demo.url}/console/connectors")
    browser.find_element(By.ID, "clear-routes").click()
    _until(lambda: "The routing rules are removed" in browser.find_element(
        By.CSS_SELECTOR, "p.notice").text, "the rules removed")
    assert _text(browser, "rules") == ""
    audit = httpx.get(f"{demo.url}/v1/admin/audit", params={"target": "routes"},
                      headers={"Authorization": f"Bearer {demo.admin_key}"}, timeout=STEP)
    actions = [(e["actor"], e["action"]) for e in audit.json()["entries"]]
    assert actions == [("console:demo-admin", "routes.clear"),
                       ("console:demo-admin", "routes.import")]  # the refused one: nothing
