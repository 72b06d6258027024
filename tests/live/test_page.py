"""The live page in a real headless Chromium: rows appear as events are appended through the API."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx
import pytest

from tests.events.helpers import cloudevent

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]  # fmt: skip


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("chromium is missing: `make test` installs it (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield browser
        browser.close()


def post(url: str, event: dict) -> int:
    response = httpx.post(f"{url}/api/v1/events", json=event, timeout=60)
    assert response.status_code == 201, response.text
    return response.json()["position"]


def test_the_live_page_shows_events_as_they_are_appended(live_server_url, browser):
    post(live_server_url, cloudevent("workflow.created", workflowid="wf-1", data={"name": "checkout"}))
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(f"{live_server_url}/", wait_until="domcontentloaded")
    assert page.url.endswith("/live/")
    status = page.get_by_test_id("status")
    page.wait_for_function("document.getElementById('status').dataset.state === 'live'", timeout=60_000)
    assert status.inner_text().strip() == "live"
    page.wait_for_selector("tr.event", timeout=60_000)  # the catch-up from the beginning

    positions = [
        post(
            live_server_url,
            cloudevent("task.started", workflowid="wf-1", taskid="charge", data={"attempt": 1}),
        ),
        post(
            live_server_url,
            cloudevent(
                "task.completed",
                workflowid="wf-1",
                taskid="charge",
                data={"amount": 129.95, "currency": "EUR"},
            ),
        ),
    ]
    page.wait_for_selector(f"tr.event[data-position='{positions[-1]}']", timeout=60_000)
    rows = page.locator("tbody tr.event")
    assert rows.count() == 3
    assert rows.nth(0).locator("td.type").inner_text() == "task.completed"
    assert rows.nth(0).locator("td").nth(2).inner_text() == "workflow-wf-1"

    rows.nth(0).click()
    assert '"currency": "EUR"' in page.locator("tr.detail pre").inner_text()

    # Pause: nothing new is shown; resume continues after the last position, without duplicates.
    page.click("#pause")
    page.wait_for_function("document.getElementById('status').dataset.state === 'paused'")
    paused = post(live_server_url, cloudevent("timer.fired", workflowid="wf-1"))
    assert page.locator(f"tr.event[data-position='{paused}']").count() == 0
    page.click("#pause")
    page.wait_for_selector(f"tr.event[data-position='{paused}']", timeout=60_000)
    assert page.locator("tbody tr.event").count() == 4

    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "live-page.png"), full_page=True)
