"""The pages against the store: read state across reloads, canned replies of the conversation's
intent, and the "Label these" form's page-side check.

Runs on the session's shared service (no server start of its own); the other side of each
conversation is a plain WebSocket client.
"""

from __future__ import annotations

import json
import re

import pytest
import yaml
from playwright.sync_api import Page, expect
from websockets.sync.client import connect

from serving.chat.settings import REPO_ROOT
from tests.serving.chat.conftest import predicted_intent, token, unique_user
from tests.serving.chat.test_new_intents_queue import labels_of, publish_cluster

pytestmark = pytest.mark.slow


def open_page(browser, url: str) -> Page:
    page = browser.new_context(viewport={"width": 1280, "height": 760}).new_page()
    page.goto(url)
    expect(page.locator("#status")).to_have_text("online", timeout=20_000)
    return page


def frames_until(socket, frame_type: str, **match: object) -> dict:
    """The data of the next `frame_type` frame whose fields equal `match`."""
    for _ in range(100):
        frame = json.loads(socket.recv(timeout=15))
        data = frame["data"]
        if frame["type"] == frame_type and all(data.get(k) == v for k, v in match.items()):
            return data
    raise AssertionError(f"no {frame_type} {match}")


def send(socket, frame_type: str, data: dict) -> None:
    socket.send(json.dumps({"type": frame_type, "data": data}))


def test_read_state_survives_a_reload_from_the_store(service, browser):
    """The customer's "Read" comes from the stored receipts, not from the page's memory; the
    customer's own receipt for the agent's message reaches the agent once after a reload; a
    rating given is not asked for again."""
    customer_id, agent_id = unique_user("state-customer"), unique_user("state-agent")
    page = open_page(browser, f"{service.url}/chat/?token={token(customer_id)}")
    # A replayed message from another day says which day, not only the time.
    stamp = page.evaluate(
        "import('/chat/static/chat.js').then((m) => m.timeOf('2020-01-02T10:00:00Z').textContent)"
    )
    assert "Jan" in stamp and ":" in stamp, stamp
    page.get_by_label("Your message").fill("My card payment was declined")
    page.get_by_label("Your message").press("Enter")
    expect(page.locator(".message.bot").first).to_be_visible(timeout=15_000)
    page.get_by_role("button", name="Talk to a human").click()
    expect(page.locator(".notice", has_text="human agent")).to_be_visible(timeout=15_000)

    with connect(f"{service.ws_url}?token={token(agent_id, 'agent')}") as agent:
        frames_until(agent, "welcome")
        send(agent, "resume", {"last_seq": 2**62})  # nothing to replay: only the live queue
        queue = frames_until(agent, "support_queue")["requests"]
        request = next(r for r in queue if r["customer_id"] == customer_id)
        send(agent, "join_room", {"room_id": request["room_id"]})
        history = frames_until(agent, "room_history", room_id=request["room_id"])
        asked = next(m for m in history["messages"] if m["role"] == "customer")
        send(agent, "read_receipt", {"message_id": asked["message_id"]})
        mine = page.locator(".message.mine", has_text="declined")
        expect(mine.locator(".delivery")).to_have_text("Read", timeout=15_000)
        reply = {"room_id": request["room_id"], "content": "Let me check", "client_msg_id": "s-1"}
        send(agent, "chat_message", reply)
        sent = frames_until(agent, "ack", client_msg_id="s-1")
        frames_until(agent, "read_receipt", message_id=sent["message_id"])  # the open page

        page.reload()
        expect(page.locator("#status")).to_have_text("online", timeout=20_000)
        expect(mine.locator(".delivery")).to_have_text("Read", timeout=15_000)
        expect(page.locator(".message.agent", has_text="Let me check")).to_be_visible()
        # One receipt for the newest agent message after the replay, no burst of old ones.
        again = frames_until(agent, "read_receipt", message_id=sent["message_id"])
        assert again["reader_id"] == customer_id

        resolve = {"request_id": request["request_id"], "resolution": "card unblocked"}
        send(agent, "support_resolve", resolve)
        closing = page.locator(".message.bot", has_text="marked as resolved")
        expect(closing).to_be_visible(timeout=15_000)
        expect(page.locator("#messages > :last-child")).to_have_class(re.compile("rating"))
        page.locator("[data-rating='4']").click()
        expect(page.locator(".notice", has_text="4/5")).to_be_visible(timeout=15_000)
    page.reload()  # a rating given is stored: the page does not ask again
    expect(page.locator(".notice", has_text="Resolved: card unblocked")).to_be_visible(
        timeout=20_000
    )
    expect(page.locator(".notice", has_text="4/5")).to_be_visible()
    expect(page.locator(".rating")).to_have_count(0)
    expect(page.locator(".notice", has_text="⚠")).to_have_count(0)
    page.context.close()


def test_the_console_offers_the_canned_replies_of_the_conversations_intent(
    service, serving_registry, browser
):
    """Replies of the intent the model read (then of the agent's label) are one click away; the
    click fills the reply box, which the agent edits before sending; the customer's receipt shows
    as "Seen", also after the console reloads."""
    replies = yaml.safe_load((REPO_ROOT / "data" / "responses.yaml").read_text())
    customer_id, agent_id = unique_user("canned-customer"), unique_user("canned-agent")
    with connect(f"{service.ws_url}?token={token(customer_id)}") as customer:
        said = {"content": "How do I activate my new card?", "client_msg_id": "c-1"}
        send(customer, "chat_message", said)
        message_id = frames_until(customer, "ack")["message_id"]
        frames_until(customer, "bot_reply")
        send(customer, "support_request", {"description": "still stuck"})
        frames_until(customer, "bot_reply", action="handoff")
        read = predicted_intent(f"sqlite:///{serving_registry['root'] / 'store.db'}", message_id)

        agent = open_page(browser, f"{service.url}/chat/agent?token={token(agent_id, 'agent')}")
        card = agent.locator(".request", has_text=customer_id)
        expect(card.locator(".reason")).to_have_text("Pressed “Talk to a human”")  # not its code
        card.click()
        suggested = agent.get_by_role("group", name="Suggested replies")
        expect(suggested).to_contain_text(f"Replies for {read}:", timeout=15_000)
        buttons = suggested.locator(".canned-reply")
        expect(buttons).to_have_count(min(3, len(replies[read])))
        buttons.first.click()
        box = agent.get_by_label("Reply to the customer")
        expect(box).to_have_value(replies[read][0])
        box.press("End")
        box.press_sequentially(" Anything else?")
        agent.get_by_role("button", name="Send").click()
        arrived = frames_until(customer, "new_message", sender_id=agent_id)
        assert arrived["content"] == f"{replies[read][0]} Anything else?"

        form = agent.locator(f".label-form[data-message-id='{message_id}']")
        second = form.locator(".suggestion").nth(1)  # the model's runner-up, a known intent
        other = second.get_attribute("data-intent")
        second.click()
        form.get_by_role("button", name="Label").click()
        expect(suggested).to_contain_text(f"Replies for {other}:", timeout=15_000)
        expect(buttons.first).to_have_attribute("title", replies[other][0])

        # The customer reads the reply: the console says so, live and after a reload (stored).
        send(customer, "read_receipt", {"message_id": arrived["message_id"]})
        answered = agent.locator(".message.mine", has_text="Anything else?")
        expect(answered.locator(".seen")).to_have_text(" · Seen", timeout=15_000)
        agent.reload()
        agent.locator(".request", has_text=customer_id).click()
        expect(answered.locator(".seen")).to_have_text(" · Seen", timeout=15_000)
    agent.context.close()


def test_label_these_checks_the_name_on_the_page_and_suggests_one(
    service, serving_registry, small_slice, browser
):
    """A typo, or a known intent marked new, is refused before anything is sent; a suggested
    new name from the cluster's top terms is one click and marks itself new."""
    store_url = f"sqlite:///{serving_registry['root'] / 'store.db'}"
    known = sorted(small_slice["category"].unique())
    cluster = publish_cluster(store_url, known)
    page = open_page(browser, f"{service.url}/chat/agent?token={token(unique_user('lt'), 'agent')}")
    card = page.locator(f".cluster[data-cluster-id='{cluster.cluster_id}']")
    card.click(timeout=15_000)
    name, is_new = card.get_by_label("intent name"), card.locator(".cluster-new")
    name.fill("crypto_paymnts")
    card.get_by_role("button", name="Name it").click()
    expect(card.locator(".label-error")).to_contain_text("not one of the model's intents")
    name.fill(known[0])
    is_new.check()
    card.get_by_role("button", name="Name it").click()
    expect(card.locator(".label-error")).to_contain_text("already an intent")
    is_new.uncheck()

    proposal = card.get_by_role("group", name="Suggested names").locator(".suggestion").last
    expect(proposal).to_have_text("new: crypto_bitcoin")
    proposal.click()
    expect(name).to_have_value("crypto_bitcoin")
    expect(is_new).to_be_checked()
    card.get_by_role("button", name="Name it").click()
    expect(page.locator(".notice", has_text="labelled crypto_bitcoin")).to_be_visible(
        timeout=15_000
    )
    expect(page.locator(".notice", has_text="⚠")).to_have_count(0)  # nothing refused by the server
    labels = labels_of(store_url, {member.message_id for member in cluster.members})
    assert {(label["intent"], label["is_new_intent"]) for label in labels} == {
        ("crypto_bitcoin", True)
    }
    page.context.close()
