"""The status page as a person sees it: a real headless Chromium (Debian's chromium and
chromium-driver, driven by selenium) against a real agent process with real local targets.
Names, states, uptime (equal to `pulse-agent report` on the same data) and incidents are on the
page; a target that starts failing turns red without a reload within 2 s; axe-core finds no
serious or critical violation, light or dark; nothing secret is on it. Screenshots at 1280 and
390 px go to tests/artifacts/ (PULSE_TEST_ARTIFACTS to change)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx
import pytest

from tests.agent_process import AgentProcess
from tests.conftest import require_binary, run_cli
from tests.test_alerting import Target

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

TOKEN = "browser-test-token-0123456789"
SECRETS = ("hunter2", "query-secret", "very-secret-header", "cookie-secret")
AXE = Path(__file__).parent / "vendor" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("PULSE_TEST_ARTIFACTS", Path(__file__).parent / "artifacts"))
NEVER = "at 2030-01-01T00:00:00Z"  # runs only when the test asks (run-now)


@pytest.fixture
def browser():
    chromium = require_binary("chromium", "chromium")
    driver_path = require_binary("chromedriver", "chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def targets(httpserver):
    from pytest_httpserver import HTTPServer

    servers = [HTTPServer(host="127.0.0.1", port=0) for _ in range(2)]
    for server in servers:
        server.start()
    try:
        yield [Target(httpserver), *(Target(s) for s in servers)]
    finally:
        for server in servers:
            server.stop()


def config(api: Target, web: Target, flip: Target, db: Path) -> str:
    secret = api.url.replace("http://", "http://probe:hunter2@") + "?token=query-secret"
    return f"""\
version: 1
agent: {{listen: '127.0.0.1:0', database: '{db}', api_token: '{TOKEN}'}}
status_page:
  title: Acme status
  description: Live status of the Acme services.
  checks: {{labels: {{public: "true"}}}}
  group_by: team
  names: {{api: Public API, web: Web shop, flip: Checkout}}
checks:
  - {{name: api, url: '{secret}', schedule: '{NEVER}', headers: {{X-Api-Key: very-secret-header}}, labels: {{public: "true", team: Core}}}}
  - name: web
    url: {web.url}
    schedule: '{NEVER}'
    headers: {{Cookie: session=cookie-secret}}
    labels: {{public: "true", team: Shop}}
    alert: {{failure_threshold: 2, success_threshold: 1}}
  - {{name: flip, url: '{flip.url}', schedule: every 1s, labels: {{public: "true", team: Core}}}}
  - {{name: internal, url: '{api.url}', schedule: '{NEVER}'}}
"""


def state(driver, check: str) -> str:
    return driver.execute_script(f"return document.querySelector('.check[data-check=\"{check}\"] .state').dataset.state")


def axe_violations(driver) -> list[dict]:
    driver.execute_script(AXE.read_text(encoding="utf-8"))
    found = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))}))))"
        ".catch(e => done([{id: 'axe-error', impact: 'critical', nodes: [String(e)]}]));"
    )
    return [v for v in found if v["impact"] in ("serious", "critical")]


def screenshot(driver, name: str, width: int) -> Path:
    """The whole page at width CSS pixels."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


def test_a_person_sees_names_states_uptime_incidents_and_live_changes(browser, targets, tmp_path):
    api, web, flip = targets
    cfg = tmp_path / "pulse.yaml"
    cfg.write_text(config(api, web, flip, tmp_path / "p.duckdb"))
    agent = AgentProcess("-c", str(cfg))
    try:
        started = agent.wait_for(lambda r: r.get("msg") == "agent started")
        base = f"http://{started['listen']}"
        auth = {"Authorization": f"Bearer {TOKEN}"}
        with httpx.Client(base_url=base, headers=auth, timeout=10) as client:
            for check, statuses in (("api", [200, 200, 200]), ("web", [200, 200, 503, 503])):
                target = api if check == "api" else web
                for status in statuses:
                    target.status = status
                    assert client.post(f"/api/v1/checks/{check}/run").status_code == 200
            deadline = time.monotonic() + 10
            while len(client.get("/api/v1/checks/web/results").json()["results"]) < 4:  # written to the database
                assert time.monotonic() < deadline
                time.sleep(0.05)
            raw_html = httpx.get(f"{base}/status").text  # no token: the page is public
        reported = run_cli("report", "--agent", base, "--format", "json", "--check", "api", "--check", "web", env={"PULSE_API_TOKEN": TOKEN})
        assert reported.returncode == 0, reported.stderr
        uptime = {r["check_name"]: r["uptime_pct"] for r in json.loads(reported.stdout)["rows"]}
        assert uptime == {"api": 100.0, "web": 50.0}
        assert "Public API" in raw_html and "50%" in raw_html  # readable without JavaScript

        browser.get(f"{base}/status")
        WebDriverWait(browser, 5).until(lambda d: d.find_element(By.ID, "live").text == "Live updates on.")
        names = [e.text for e in browser.find_elements(By.CSS_SELECTOR, ".check h3")]
        assert names == ["Public API", "Checkout", "Web shop"]  # groups Core, Shop in name order
        assert [e.text.split()[0] for e in browser.find_elements(By.CSS_SELECTOR, "h2[id^=g]")] == ["Core", "Shop"]
        assert (state(browser, "api"), state(browser, "web")) == ("up", "down")
        for check, name in (("api", "Public API"), ("web", "Web shop")):
            item = browser.find_element(By.CSS_SELECTOR, f'.check[data-check="{check}"]')
            shown = item.find_element(By.CSS_SELECTOR, "dl.uptime div:first-child dd").text
            assert shown == f"{uptime[check]:g}%", (check, shown)
            assert item.find_element(By.CSS_SELECTOR, ".state").text == ("Up" if check == "api" else "Down")
            assert item.find_element(By.CSS_SELECTOR, "h3").text == name
        incidents = browser.find_element(By.ID, "incidents").text
        assert "Web shop" in incidents and "Ongoing" in incidents and "(status)" in incidents
        assert "internal" not in browser.page_source

        assert axe_violations(browser) == []
        shots = [screenshot(browser, "status-1280.png", 1280)]
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "dark"}]})
        assert axe_violations(browser) == []
        shots.append(screenshot(browser, "status-1280-dark.png", 1280))
        browser.execute_cdp_cmd("Emulation.setEmulatedMedia", {"features": [{"name": "prefers-color-scheme", "value": "light"}]})

        # Phone width: nothing wider than the screen, and axe still content.
        browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": True})
        assert browser.execute_script("return document.documentElement.scrollWidth") <= 390
        assert axe_violations(browser) == []
        shots.append(screenshot(browser, "status-390.png", 390))
        assert all(p.stat().st_size > 10_000 for p in shots)

        # Keyboard: the first Tab reaches the skip link, which leads to the checks.
        browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
        assert browser.switch_to.active_element.text == "Skip to the checks"
        browser.switch_to.active_element.send_keys(Keys.ENTER)
        assert browser.current_url.endswith("#main")

        # Live: flip starts failing and turns red without a reload.
        WebDriverWait(browser, 5, 0.05).until(lambda d: state(d, "flip") == "up")
        browser.execute_script("window.notReloaded = true")
        flip.status = 500
        failing = time.monotonic()
        WebDriverWait(browser, 3, 0.02).until(lambda d: state(d, "flip") == "down")
        took = time.monotonic() - failing
        assert took < 2.0, took
        assert browser.execute_script("return window.notReloaded === true")
        overall = browser.find_element(By.ID, "overall")
        assert overall.get_attribute("data-state") == "down"
        assert "Checkout is now down." in browser.find_element(By.ID, "live").text or state(browser, "flip") == "down"

        page_text = browser.page_source
        badges = [httpx.get(f"{base}/badge/{c}/{p}").text for c in ("api", "web") for p in ("status.svg", "uptime/24h.json")]
        for text in (raw_html, page_text, httpx.get(f"{base}/api/v1/status", headers=auth).text, *badges):
            for secret in SECRETS:
                assert secret not in text
    finally:
        assert agent.stop() == 0
