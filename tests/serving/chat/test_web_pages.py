"""The customer page and the agent console in headless Chromium (Debian's, driven by Playwright).

Screenshots go to $SCREENSHOT_DIR (`make screenshots` sets docs/screenshots), else a temp dir.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.serving.chat.conftest import token, unique_user

pytestmark = pytest.mark.slow


def open_page(browser, url: str) -> Page:
    context = browser.new_context(viewport={"width": 1100, "height": 720})
    page = context.new_page()
    page.goto(url)
    expect(page.locator("#status")).to_have_text("online", timeout=20_000)
    return page


def test_customer_and_agent_pages_run_a_support_conversation(service, browser, screenshot_dir):
    customer_id, agent_id = unique_user("web-customer"), unique_user("web-agent")
    customer = open_page(browser, f"{service.url}/chat/?token={token(customer_id)}")
    agent = open_page(browser, f"{service.url}/chat/agent?token={token(agent_id, 'agent')}")

    customer.fill("#text", "I ordered a new card last week and it has not arrived")
    customer.click("button[type=submit]")
    bot_reply = customer.locator(".message.bot").first
    expect(bot_reply).to_be_visible(timeout=15_000)
    expect(customer.locator(".intent")).to_have_count(0)  # the model's labels: agents only

    customer.click("#human")
    expect(customer.locator(".notice", has_text="human agent")).to_be_visible(timeout=15_000)

    queued = agent.locator(".request", has_text=customer_id)
    expect(queued).to_be_visible(timeout=15_000)
    queued.click()
    expect(agent.locator(".message.customer").first).to_be_visible(timeout=15_000)
    expect(agent.locator(".message.bot .intent").first).to_be_visible()

    agent.locator("#text").press_sequentially("Hello")
    expect(customer.locator("#typing")).to_contain_text("is typing", timeout=10_000)
    agent.fill("#text", "Hello, this is the support team: your card was dispatched yesterday.")
    agent.click("#send")
    expect(customer.locator(".message.agent")).to_contain_text("dispatched", timeout=15_000)

    # Drop the socket, write while disconnected: the outbox keeps the message and the
    # reconnect (backoff, resume) delivers it.
    customer.evaluate("window.chat.closedByUser = false; window.chat.socket.close()")
    customer.fill("#text", "Great, thank you")
    customer.click("button[type=submit]")
    # Shown at once as "Sending…", "Sent" once the server acknowledged it.
    sent = customer.locator(".message.mine", has_text="Great, thank you")
    expect(sent.locator(".delivery")).to_have_text(re.compile("Sent|Read"), timeout=30_000)
    assert customer.evaluate("JSON.parse(localStorage.getItem('chat:customer:outbox'))") == []
    expect(agent.locator(".message.customer", has_text="Great, thank you")).to_be_visible(
        timeout=15_000
    )

    agent.screenshot(path=str(screenshot_dir / "agent_resolving.png"), full_page=True)
    agent.fill("#resolution", "card dispatched; tracking link sent")
    agent.click("#resolve")
    expect(customer.locator(".notice", has_text="Resolved")).to_be_visible(timeout=15_000)
    customer.click("[data-rating='5']")
    expect(customer.locator(".notice", has_text="5/5")).to_be_visible(timeout=15_000)
    customer.screenshot(path=str(screenshot_dir / "customer_rating.png"), full_page=True)
    assert (screenshot_dir / "customer_rating.png").stat().st_size > 10_000
    assert (screenshot_dir / "agent_resolving.png").stat().st_size > 10_000


@pytest.mark.parametrize("path", ["/chat/", "/chat/agent"])
def test_without_a_token_the_page_says_how_to_sign_in(service, browser, path):
    context = browser.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{service.url}{path}")  # dev login is off: no prompt that cannot work
    expect(page.locator("#status")).to_have_text("signed out", timeout=20_000)
    expect(page.locator(".notice.signin")).to_contain_text("make token")
    expect(page.locator("#dev-login")).to_have_count(0)  # no form for a login that cannot work
    assert dialogs == []
    context.close()
