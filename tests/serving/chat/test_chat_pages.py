"""The widget on another origin's page, the customer page and the agent console, in Chromium.

One service for the module, started with CHAT_WIDGET_ORIGINS naming a host page served here on
another port (another origin) and CHAT_WIDGET_KEYS giving that site its key: the page includes
`/chat/widget.js` with one script tag, and the site's backend (`/token`) signs its customer's
short-lived site token with the site's key, which the widget's panel exchanges for a chat token.
Screenshots go to $SCREENSHOT_DIR (`make screenshots`: docs/screenshots), else a temp dir.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from playwright.sync_api import Page, expect
from websockets.sync.client import connect

from serving.chat.auth import issue_site_token, verify_token
from tests.ports import free_port
from tests.serving.chat.conftest import token, unique_user
from tests.serving.conftest import CHAT_SECRET, ServiceProcess, service_env

pytestmark = pytest.mark.slow
HOST_PAGE = """<!doctype html><html lang="en"><head><title>Acme Bank</title></head>
<body style="font-family: system-ui; margin: 40px"><h1>Acme Bank</h1><p>Your accounts.</p>
<script src="{service}/chat/widget.js" data-token-url="/token?user={user}" defer></script>
</body></html>"""
SITE, SITE_KEY = "acme", "acme-bank-widget-key-0123456789abcdef"


@pytest.fixture(scope="module")
def host_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def pages_service(serving_registry, host_port) -> Iterator[ServiceProcess]:
    origins = json.dumps([f"http://127.0.0.1:{host_port}"])
    keys = json.dumps({SITE: SITE_KEY})
    # Small replay pages and a tight resume bucket: a reloaded page pages through its history
    # with several resumes and meets 429 on the way (the page waits and goes on).
    limits = {"CHAT_REPLAY_LIMIT": "6", "CHAT_RESUME_BURST": "2", "CHAT_RESUME_RATE_PER_S": "0.2"}
    env = service_env(
        serving_registry,
        "pages.db",
        CHAT_WIDGET_ORIGINS=origins,
        CHAT_WIDGET_KEYS=keys,
        **limits,
    )
    process = ServiceProcess(env)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def host_site(pages_service, host_port) -> Iterator[str]:
    """A site on another origin whose page includes the widget; `?user=` is who is signed in
    (a real site reads its session cookie), `/token` its backend signing their site token.
    A user named `stale-…` first gets an expired token (a page left open too long)."""
    served: set[str] = set()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            user = parse_qs(url.query).get("user", [""])[0]
            if url.path == "/token":
                stale = user.startswith("stale") and user not in served
                served.add(user)
                site_token = issue_site_token(SITE, SITE_KEY, user, ttl_s=-120 if stale else 300)
                body = json.dumps({"token": site_token}).encode()
                kind = "application/json"
            else:
                body = HOST_PAGE.format(service=pages_service.url, user=user).encode()
                kind = "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("content-type", kind)
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", host_port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{host_port}"
    server.shutdown()
    server.server_close()


def test_pages_say_who_may_frame_them_and_the_widget_loads_anywhere(pages_service, host_site):
    widget = httpx.get(f"{pages_service.url}/chat/widget.js")
    assert widget.status_code == 200 and widget.headers["content-type"].startswith(
        "text/javascript"
    )
    assert widget.headers["access-control-allow-origin"] == "*"
    assert widget.headers["cross-origin-resource-policy"] == "cross-origin"
    csp = {
        path: httpx.get(f"{pages_service.url}{path}").headers["content-security-policy"]
        for path in ("/chat/", "/chat/embed", "/chat/agent")
    }
    assert csp["/chat/embed"].endswith(f"frame-ancestors 'self' {host_site}")
    assert csp["/chat/"].endswith("frame-ancestors 'self'")
    assert csp["/chat/agent"].endswith("frame-ancestors 'none'")


def test_the_widget_runs_a_chat_on_another_origins_page(
    pages_service, host_site, browser, screenshot_dir
):
    user = unique_user("widget")
    page = browser.new_context(viewport={"width": 1100, "height": 760}).new_page()
    page.goto(f"{host_site}/?user={user}")
    launcher = page.get_by_role("button", name="Open support chat")
    expect(launcher).to_have_attribute("aria-expanded", "false")
    launcher.focus()
    page.keyboard.press("Enter")  # keyboard first
    expect(page.get_by_role("button", name="Close support chat")).to_have_attribute(
        "aria-expanded", "true"
    )
    panel = page.frame_locator("iframe[title='Support chat']")
    expect(panel.locator("#status")).to_have_text("online", timeout=20_000)
    panel.get_by_label("Your message").fill("How do I activate my new card?")
    panel.get_by_label("Your message").press("Enter")
    mine = panel.locator(".message.mine")
    expect(mine.locator(".delivery")).to_have_text("Sent", timeout=15_000)
    expect(mine.locator("time")).to_have_count(1)
    reply = panel.locator(".message.bot").first
    expect(reply).to_be_visible(timeout=15_000)
    expect(reply.locator("time")).to_have_count(1)
    expect(panel.locator(".intent")).to_have_count(0)  # no model labels for customers
    page.screenshot(path=str(screenshot_dir / "widget.png"))
    panel.get_by_role("button", name="Talk to a human").click()
    expect(panel.locator(".notice", has_text="human agent")).to_be_visible(timeout=15_000)
    page.keyboard.press("Escape")
    expect(page.locator("#support-chat-panel")).to_be_hidden()

    # An agent answers while the panel is closed: the launcher counts it, nothing is "read".
    with connect(f"{pages_service.ws_url}?token={token(unique_user('w-agent'), 'agent')}") as agent:
        frames_until(agent, "welcome")
        agent.send(json.dumps({"type": "resume", "data": {"last_seq": 2**62}}))
        queue = frames_until(agent, "support_queue")["requests"]
        room_id = next(r["room_id"] for r in queue if r["customer_id"] == f"{SITE}:{user}")
        agent.send(json.dumps({"type": "join_room", "data": {"room_id": room_id}}))
        said = {"room_id": room_id, "content": "Hello, I can help", "client_msg_id": "w-1"}
        agent.send(json.dumps({"type": "chat_message", "data": said}))
        message_id = frames_until(agent, "ack")["message_id"]
        unread = page.get_by_role("button", name="Open support chat (1 unread)")
        expect(unread.locator(".slw-badge")).to_have_text("1", timeout=15_000)
        with pytest.raises(TimeoutError):  # the panel got it (the badge) and did not receipt it
            frames_until(agent, "read_receipt", timeout=1)
        unread.click()
        assert frames_until(agent, "read_receipt")["message_id"] == message_id
    expect(page.locator(".slw-badge")).to_have_count(0)
    expect(panel.locator(".message.agent")).to_contain_text("Hello, I can help")
    page.context.close()


def test_a_refused_site_token_makes_the_widget_fetch_a_fresh_one(host_site, browser):
    """The panel says it is signed out; the widget asks the site's backend again and the panel
    starts over with the fresh token."""
    page = browser.new_context().new_page()
    page.goto(f"{host_site}/?user={unique_user('stale')}")
    page.get_by_role("button", name="Open support chat").click()
    panel = page.frame_locator("iframe[title='Support chat']")
    expect(panel.locator("#status")).to_have_text("online", timeout=20_000)
    page.context.close()


def test_a_site_token_is_exchanged_for_a_customer_chat_token(pages_service):
    """The site's key speaks for `acme:<its user>` as a customer (refusals: test_app.py)."""
    exchange = f"{pages_service.url}/chat/widget/session"
    answer = httpx.post(exchange, json={"token": issue_site_token(SITE, SITE_KEY, "u-17")})
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    session = answer.json()
    identity = verify_token(CHAT_SECRET, session["token"])
    assert (identity.user_id, identity.role.value) == ("acme:u-17", "customer")
    assert session["user_id"] == "acme:u-17" and session["expires_at"] > time.time() + 3000
    with connect(f"{pages_service.ws_url}?token={session['token']}") as socket:
        assert frames_until(socket, "welcome")["user_id"] == "acme:u-17"


def frames_until(socket, frame_type: str, timeout: float = 15) -> dict:
    for _ in range(50):
        frame = json.loads(socket.recv(timeout=timeout))
        if frame["type"] == frame_type:
            return frame["data"]
    raise AssertionError(f"no {frame_type}")


def an_earlier_conversation(service: ServiceProcess, customer_id: str) -> None:
    """A resolved conversation of the customer, for the console's history."""
    with (
        connect(f"{service.ws_url}?token={token(customer_id)}") as customer,
        connect(f"{service.ws_url}?token={token(unique_user('earlier'), 'agent')}") as agent,
    ):
        said = {"content": "my top up failed twice", "client_msg_id": "earlier-1"}
        customer.send(json.dumps({"type": "chat_message", "data": said}))
        request_id = frames_until(customer, "support_request_created")["request_id"]
        frames_until(customer, "bot_reply")
        resolve = {"request_id": request_id, "resolution": "refunded the top up"}
        agent.send(json.dumps({"type": "support_resolve", "data": resolve}))
        frames_until(customer, "support_request_resolved")


def open_page(browser, url: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 760}).new_page()
    page.goto(url)
    expect(page.locator("#status")).to_have_text("online", timeout=20_000)
    return page


def test_customer_page_and_agent_console(pages_service, browser, screenshot_dir):
    customer_id, agent_id = unique_user("pages-customer"), unique_user("pages-agent")
    an_earlier_conversation(pages_service, customer_id)
    url = pages_service.url
    customer = open_page(browser, f"{url}/chat/?token={token(customer_id)}")
    agent = open_page(browser, f"{url}/chat/agent?token={token(agent_id, 'agent')}")

    customer.get_by_label("Your message").fill("How do I activate my new card?")
    customer.get_by_role("button", name="Send").click()
    # The earlier conversation is replayed above it; the bot answers below it.
    answer = customer.locator(".message.mine:has-text('activate my new card') ~ .message.bot")
    expect(answer.first).to_be_visible(timeout=15_000)
    expect(customer.locator(".intent")).to_have_count(0)
    customer.get_by_role("button", name="Talk to a human").click()
    expect(customer.locator(".notice", has_text="human agent")).to_be_visible(timeout=15_000)

    agent.locator(".request", has_text=customer_id).click()
    desk = agent.get_by_role("complementary", name="Customer context")
    expect(desk.locator(".reason")).to_have_text("Pressed “Talk to a human”", timeout=15_000)
    expect(desk.locator(".past")).to_contain_text("my top up failed twice")
    expect(desk.locator(".past")).to_contain_text("refunded the top up")
    expect(agent.locator(".message.bot .intent").first).to_be_visible()  # agents see the model

    # The true intent: a typo is refused on the page, a suggestion from the model's top-k is not.
    form = agent.locator(".message.customer .label-form").first
    expect(form.locator(".suggestion").first).to_be_visible()
    form.get_by_label("True intent").fill("activate_my_cardd")
    form.get_by_role("button", name="Label").click()
    expect(form.locator(".label-error")).to_contain_text("not one of the model's intents")
    form.locator(".suggestion").first.click()
    suggested = form.get_by_label("True intent").input_value()
    form.get_by_role("button", name="Label").click()
    expect(agent.locator(".labelled").first).to_have_text(f"Labelled {suggested}", timeout=15_000)

    # A message after the hand-off: read by the agent, labelled as a new intent.
    customer.get_by_label("Your message").fill("Also, do you have metal cards?")
    customer.get_by_label("Your message").press("Enter")
    asked = agent.locator(".message.customer", has_text="metal cards")
    expect(asked).to_be_visible(timeout=15_000)
    expect(customer.locator(".message.mine").last.locator(".delivery")).to_have_text(
        "Read", timeout=15_000
    )
    asked.get_by_label("True intent").fill("metal_card")
    asked.get_by_label("new intent").check()
    asked.get_by_role("button", name="Label").click()
    expect(asked.locator(".labelled")).to_have_text(
        "Labelled metal_card (new intent)", timeout=15_000
    )
    # A new intent has no canned replies yet: the conversation's known intent keeps its own.
    suggested_replies = agent.get_by_role("group", name="Suggested replies")
    expect(suggested_replies).to_contain_text(f"Replies for {suggested}:")

    # A canned reply from data/responses.yaml, typing, and the reply reaching the customer.
    canned = agent.evaluate("document.querySelector('#canned-replies option').value")
    agent.get_by_label("Canned reply").fill(canned)
    expect(agent.get_by_label("Reply to the customer")).to_have_value(canned)
    agent.get_by_label("Reply to the customer").press_sequentially(" Anything else?")
    expect(customer.locator("#typing")).to_have_text("Support agent is typing…", timeout=10_000)
    agent.get_by_role("button", name="Send").click()
    expect(customer.locator(".message.agent")).to_contain_text("Anything else?", timeout=15_000)
    agent.screenshot(path=str(screenshot_dir / "agent_console.png"), full_page=True)

    # The connection drops: the customer is told, then it comes back by itself.
    customer.evaluate(
        "Math.random = () => 0.99; window.chat.attempt = 3; window.chat.socket.close()"
    )
    banner = customer.locator("#connection")
    expect(banner).to_contain_text("Reconnecting", timeout=5_000)
    expect(banner).to_be_hidden(timeout=30_000)
    expect(customer.locator("#status")).to_have_text("online")
    customer.screenshot(path=str(screenshot_dir / "customer_chat.png"), full_page=True)

    # A reload pages through the whole history (6 events a resume, past the resume limit).
    customer.reload()
    expect(customer.locator(".message.agent")).to_contain_text("Anything else?", timeout=30_000)
    expect(customer.locator(".message.mine", has_text="my top up failed twice")).to_have_count(1)
    expect(customer.locator(".rating")).to_have_count(0)  # the earlier one: not asked any more
    read = customer.locator(".message.mine", has_text="metal cards").locator(".delivery")
    expect(read).to_have_text("Read")
