"""A text of only zero-width / invisible characters and spaces is blank, like an empty one."""

from __future__ import annotations

import httpx
import pytest

from serving.chat.client import ChatClient
from serving.inputs import is_blank
from tests.serving.chat.conftest import run, token, unique_user
from tests.serving.conftest import FEEDBACK_KEY

INVISIBLE = " \u200b\u200c\u200d\u2060\ufeff\t"
PREDICT = {"text": "where is my card"}
FEEDBACK = {"text": "where is my card", "true_intent": "card_arrival"}


def test_is_blank_sees_through_invisible_characters():
    assert is_blank(INVISIBLE) and is_blank("") and is_blank("\ufeff")
    assert not is_blank("\u200bhi\u200b") and not is_blank(".")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/predict", {"text": INVISIBLE}, ["text"]),
        ("/batch_predict", {"items": [PREDICT, {"text": "\u200b\u200b"}]}, ["items", 1, "text"]),
        ("/feedback", FEEDBACK | {"text": "\ufeff \u2060"}, ["text"]),
        ("/feedback", FEEDBACK | {"true_intent": "\u200d"}, ["true_intent"]),
    ],
)
def test_an_invisible_text_is_a_400_naming_the_field(service, path, body, field):
    response = httpx.post(
        f"{service.url}{path}", json=body, headers={"x-api-key": FEEDBACK_KEY}, timeout=30
    )
    assert response.status_code == 400, response.text[:500]
    [problem] = response.json()["detail"]
    assert problem["loc"] == field and "invisible" in problem["msg"], problem


@pytest.mark.slow
def test_an_invisible_chat_message_is_an_error_event_and_the_socket_lives(service):
    async def chat() -> None:
        async with ChatClient.connect(service.ws_url, token(unique_user("zw"))) as client:
            await client.say(INVISIBLE)
            error = await client.expect("error")
            assert error["code"] == 400 and "blank" in error["message"], error
            await client.say("still here?")
            await client.expect("ack")

    run(chat())
