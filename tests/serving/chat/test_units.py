"""Pure chat logic: frame parsing, tokens, the bot's policy and its response catalogue."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from serving.chat import protocol
from serving.chat.auth import AuthError, Role, issue_token, verify_token
from serving.chat.bot import (
    Action,
    BotPolicy,
    CatalogueError,
    HandoffReason,
    ResponseCatalogue,
    Signals,
    Turn,
    decide,
    frustration_score,
)
from serving.chat.protocol import ErrorCode, FrameError
from serving.chat.settings import ChatSettings

SECRET = "unit-test-secret-unit-test-secret-1234"
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(
    ("raw", "code", "fragment"),
    [
        ("not json", ErrorCode.BAD_FRAME, "not valid JSON"),
        ("[1, 2]", ErrorCode.BAD_FRAME, "a frame is an object"),
        ('{"type": "dance"}', ErrorCode.BAD_FRAME, "unknown frame type 'dance'"),
        (
            '{"type": "chat_message", "data": {"content": "hi"}}',
            ErrorCode.BAD_FRAME,
            "client_msg_id",
        ),
        (
            '{"type": "typing", "data": {"room_id": "r", "colour": 1}}',
            ErrorCode.BAD_FRAME,
            "colour",
        ),
        ('{"type": "resume", "data": {"last_seq": -1}}', ErrorCode.BAD_FRAME, "last_seq"),
        # Past a 64-bit seq: the store's query overflowed into a 500.
        ('{"type": "resume", "data": {"last_seq": 9223372036854775808}}', 400, "last_seq"),
        ('{"type": "rate_support", "data": {"request_id": "r", "rating": 9}}', 400, "rating"),
        # Longer than support_requests.issue_type: PostgreSQL refused the row (a 500).
        (json.dumps({"type": "support_request", "data": {"issue_type": "x" * 65}}), 400, "issue"),
        # PostgreSQL refuses NUL in text: the message was accepted, then its row failed (a 500).
        (
            '{"type": "chat_message", "data": {"content": "a\\u0000b", "client_msg_id": "c"}}',
            400,
            "NUL",
        ),
        (
            json.dumps(
                {
                    "type": "create_room",
                    "data": {"name": "r", "type": "public", "member_ids": ["u\x00"]},
                }
            ),
            400,
            "member_ids: Value error, contains the NUL",
        ),
        (json.dumps({"type": "heartbeat", "data": {"pad": "x" * 20_000}}), 413, "bytes"),
    ],
)
def test_bad_frames_are_refused_with_a_reason(raw, code, fragment):
    with pytest.raises(FrameError) as caught:
        protocol.parse_frame(raw, max_bytes=16_384)
    assert caught.value.code == code
    assert fragment in caught.value.message


def test_good_frame_parses_into_its_model():
    kind, data = protocol.parse_frame(
        '{"type": "chat_message", "data": {"content": "hi", "client_msg_id": "m1"}}', 1000
    )
    assert kind == "chat_message" and data.content == "hi" and data.room_id is None


def test_tokens_round_trip_and_fail_with_reasons():
    identity = verify_token(SECRET, issue_token(SECRET, "alice", "agent", 60))
    assert identity.user_id == "alice" and identity.role is Role.AGENT
    with pytest.raises(AuthError, match="required"):
        verify_token(SECRET, None)
    with pytest.raises(AuthError, match="invalid token"):
        verify_token(
            SECRET, issue_token("another-secret-another-secret-12345", "a", "customer", 60)
        )
    with pytest.raises(AuthError, match="expired"):
        verify_token(SECRET, issue_token(SECRET, "alice", "customer", -5))
    with pytest.raises(AuthError, match="not allowed"):
        issue_token(SECRET, "bot", "customer", 60)
    # Longer than the store's user-id columns or holding NUL: PostgreSQL refused every write.
    with pytest.raises(AuthError, match="longer than 128"):
        verify_token(SECRET, issue_token(SECRET, "u" * 129, "customer", 60))
    with pytest.raises(AuthError, match="not allowed"):
        verify_token(SECRET, issue_token(SECRET, "u\x00", "customer", 60))
    assert verify_token(SECRET, issue_token(SECRET, "u" * 128, "agent", 60)).user_id == "u" * 128


def test_settings_name_the_bad_key(monkeypatch):
    monkeypatch.setenv("CHAT_JWT_SECRET", "short")
    with pytest.raises(ValueError, match="CHAT_JWT_SECRET"):
        ChatSettings()
    monkeypatch.delenv("CHAT_JWT_SECRET")
    with pytest.raises(ValueError, match="CHAT_JWT_SECRET is not set"):
        ChatSettings().require_secret()
    monkeypatch.setenv("CHAT_BROKER_URL", "amqp://x")
    with pytest.raises(ValueError, match="CHAT_BROKER_URL"):
        ChatSettings()


def test_catalogue_covers_every_banking77_intent(banking77_dir):
    catalogue = ResponseCatalogue.load(REPO_ROOT / "data" / "responses.yaml")
    intents = json.loads((banking77_dir / "categories.json").read_text())
    assert len(intents) == 77
    assert catalogue.missing(intents) == []
    assert catalogue.reply("not_an_intent") in catalogue.replies["default"]


def test_catalogue_errors_name_the_key(tmp_path):
    with pytest.raises(CatalogueError, match="_handoff"):
        ResponseCatalogue({"_rephrase": ["a"], "default": ["b"], "_resolved": ["c"]})
    bad = tmp_path / "responses.yaml"
    bad.write_text(
        "default: [1]\n_rephrase: [a]\n_handoff: [a]\n_handoff_failed: [a]\n_resolved: [a]"
    )
    with pytest.raises(CatalogueError, match="'default'"):
        ResponseCatalogue.load(bad)


POLICY = BotPolicy(handoff_after_fallbacks=2, frustration_threshold=0.6)


def signals(text: str, intent: str = "card_arrival", fallback: bool = False, polarity: float = 0.0):
    return Signals(text, intent, fallback, polarity)


def test_confident_prediction_is_answered():
    decision = decide(POLICY, signals("where is my card"), [])
    assert decision.action is Action.ANSWER and decision.reason is None


def test_first_fallback_asks_to_rephrase_and_the_next_hands_off():
    first = decide(POLICY, signals("blorp", "nlu_fallback", True), [])
    assert first.action is Action.REPHRASE
    second = decide(
        POLICY, signals("blorp again", "nlu_fallback", True), [Turn("nlu_fallback", True, 0)]
    )
    assert second.action is Action.HANDOFF
    assert second.reason is HandoffReason.REPEATED_FALLBACK


def test_asking_for_a_human_hands_off_at_once():
    decision = decide(POLICY, signals("can I talk to a human please"), [])
    assert decision.reason is HandoffReason.ASKED_FOR_HUMAN


def test_frustration_signals_add_up_to_a_hand_off():
    history = [Turn("card_arrival", False, 0.1), Turn("card_arrival", False, -0.2)]
    angry = signals("This is TERRIBLE!!! where is my card", polarity=-1.0)
    assert frustration_score(angry, history) == pytest.approx(1.0)
    decision = decide(POLICY, angry, history)
    assert decision.action is Action.HANDOFF and decision.reason is HandoffReason.FRUSTRATION
    calm = signals("thanks, where is my card?", polarity=0.2)
    assert frustration_score(calm, []) == 0.0


def test_widget_origins_are_origins_only():
    allowed = ["https://shop.example.com", "http://127.0.0.1:8080"]
    assert ChatSettings(widget_origins=allowed).widget_origins == allowed
    # Each becomes a CSP source: a wildcard, a path or a second directive would widen it.
    for bad in ("*", "https://shop.example.com/page", "https://a.example; script-src *", "a.com"):
        with pytest.raises(ValueError, match="CHAT_WIDGET_ORIGINS"):
            ChatSettings(widget_origins=[bad])
