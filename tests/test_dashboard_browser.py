"""The county office's page in a real browser: the distribution's headless Chromium
(scripts/browser), driven by Playwright, against the bot's own web server. It opens an
admin's link and the moderators' Mini App, finds the cases on the map and in the table,
filters them, opens a case's history, and keeps a screenshot (test-artifacts/dashboard.png).

Skipped when no Chromium is installed, unless REQUIRE_BROWSER is set (CI sets it)."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.conftest import ROOT, BotStarter
from tests.fakegram import FakeTelegram
from tests.test_county_cases import RIDER
from tests.test_dashboard import MOD, Office, init_data, open_office

ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", ROOT / "test-artifacts"))
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# As the machine's own check found: without the background-networking flags Chromium keeps
# trying Google's hosts, which a closed network refuses.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

ARTIFACTS.mkdir(parents=True, exist_ok=True)
if not Path(CHROMIUM).exists():
    if os.environ.get("REQUIRE_BROWSER"):
        raise RuntimeError(f"REQUIRE_BROWSER is set but no Chromium at {CHROMIUM}")
    pytest.skip("no Chromium (scripts/browser installs it)", allow_module_level=True)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as driver:
        launched = await driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            await launched.close()


async def opened(browser: Browser, office: Office, url: str) -> tuple[Page, list[str]]:
    """A page at `url`, with every address it asked for and any script error collected."""
    page = await browser.new_page(viewport={"width": 1280, "height": 1000}, locale="zh-CN")
    asked: list[str] = []
    errors: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url)
    await page.wait_for_selector("body[data-ready]")
    assert errors == []
    return page, asked


async def test_the_page_shows_the_cases_on_the_map_and_in_the_table(
    start_bot: BotStarter, fake: FakeTelegram, browser: Browser
) -> None:
    office = await open_office(start_bot, fake)
    page, asked = await opened(browser, office, await office.link())
    assert await page.get_attribute("body", "data-ready") == "yes"
    assert "t=" not in page.url  # the link's token left the address bar

    # The map: the towns' outlines with their names, a point per running case, all green.
    assert await page.locator("path.town-outline").count() == 2
    assert await page.locator(".town-name").all_inner_texts() == ["城关镇", "好花红镇"]
    assert await page.locator("path.case-point").count() == 3
    assert await page.locator("path.case-point.light-green").count() == 3
    # The table: the three cases, and how many there are.
    rows = page.locator("#cases tbody tr[data-reference]")
    assert sorted(await rows.evaluate_all("rows => rows.map(r => r.dataset.reference)")) == sorted(
        [office.accepted, office.waiting, office.elsewhere]
    )
    assert await page.inner_text("#count") == "共3件，显示3件"
    # The departments' performance table.
    performance = await page.inner_text("#performance")
    assert "城关镇办" in performance
    assert "按时办结率" in performance

    # A filter narrows table and map alike.
    await page.select_option('select[name="town"]', "好花红镇")
    await expect(rows).to_have_count(1)
    assert await rows.evaluate_all("rows => rows.map(r => r.dataset.reference)") == [
        office.elsewhere
    ]
    assert await page.locator("path.case-point").count() == 1
    await page.select_option('select[name="town"]', "")
    await expect(rows).to_have_count(3)

    # A case's history, from its row.
    await page.click(f'#cases tr[data-reference="{office.accepted}"]')
    await page.wait_for_selector("#events:not([hidden]) tbody tr")
    events = await page.locator("#events tbody tr").all_inner_texts()
    assert len(events) == 2
    assert "派发" in events[0]
    assert "签收" in events[1]
    assert "部门" in events[1]
    assert office.accepted in await page.inner_text("#history-title")

    await page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    # With tiles = none the page asked nothing of any other host.
    base = office.url.rsplit("/dashboard", 1)[0]
    assert [url for url in asked if not url.startswith(base)] == []
    text = await page.inner_text("body")
    assert RIDER.first_name not in text


async def test_the_mini_app_lets_a_moderator_in_and_nobody_else(
    start_bot: BotStarter, fake: FakeTelegram, browser: Browser
) -> None:
    office = await open_office(start_bot, fake)
    launch = f"{office.url}?lang=zh#tgWebAppData={quote(init_data(office.bot, MOD))}"
    page, _ = await opened(browser, office, launch + "&tgWebAppVersion=8.0")
    assert await page.get_attribute("body", "data-ready") == "yes"
    assert await page.locator("path.case-point").count() == 3

    rider = f"{office.url}?lang=zh#tgWebAppData={quote(init_data(office.bot, RIDER))}"
    page, _ = await opened(browser, office, rider)
    assert await page.get_attribute("body", "data-ready") == "denied"
    assert "没有查看县级工作台的权限" in await page.inner_text("#status")
    assert await page.locator("#cases tbody tr").count() == 0

    page, _ = await opened(browser, office, office.url)  # no credentials at all
    assert await page.get_attribute("body", "data-ready") == "denied"
    assert "/dashboard" in await page.inner_text("#status")


async def test_an_expired_link_says_so(
    start_bot: BotStarter, fake: FakeTelegram, browser: Browser
) -> None:
    office = await open_office(start_bot, fake)
    link = await office.link()
    page = await browser.new_page()
    forged = link.replace("t=", "t=x")
    response = await page.goto(forged)
    assert response is not None
    assert response.status == 401
    assert "链接已过期或无效" in await page.inner_text("body")
