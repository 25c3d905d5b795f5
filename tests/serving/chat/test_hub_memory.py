"""How often the hub applies an envelope to its memory of views (serving/chat/presence.py).

In process, publishing is delivering: each envelope is applied once, before it is delivered.
With Redis, a worker applies its own envelope before the round trip (its next connect already
counts it) and applies what it hears, its own and the other workers' envelopes.
"""

from __future__ import annotations

from pathlib import Path

from starlette.testclient import TestClient

from serving.chat.broker import Envelope
from serving.chat.hub import ChatHub
from tests.serving.chat.conftest import unique_user
from tests.serving.chat.test_presence import (
    connect,
    open_room,
    receive_until,
    running_hub,
    say,
    send,
)


class Trace:
    """What the hub did with each envelope, in order: applied to its views, published, sent."""

    def __init__(self, hub: ChatHub) -> None:
        self.steps: list[tuple[str, Envelope]] = []
        heard, publish = hub.views.heard, hub.broker.publish
        deliver = hub.connections.deliver

        def traced_heard(envelope: Envelope) -> None:
            self.steps.append(("heard", envelope))
            heard(envelope)

        async def traced_publish(envelope: Envelope) -> None:
            self.steps.append(("published", envelope))
            await publish(envelope)

        async def traced_deliver(envelope: Envelope) -> None:
            self.steps.append(("delivered", envelope))
            await deliver(envelope)

        hub.views.heard = traced_heard  # type: ignore[method-assign]
        hub.broker.publish = traced_publish  # type: ignore[method-assign]
        hub.connections.deliver = traced_deliver  # type: ignore[method-assign]

    def of(self, envelope: Envelope) -> list[str]:
        """The steps of one envelope (equal envelopes: those heard back through Redis)."""
        return [step for step, seen in self.steps if seen == envelope]

    def published(self) -> list[Envelope]:
        """Every envelope published, once each."""
        return list(dict.fromkeys(seen for step, seen in self.steps if step == "published"))


def chat_in_a_room(client: TestClient, trace: Trace) -> list[Envelope]:
    """Open a room, write in it, go away; what was published, once the last is delivered."""
    with connect(client, unique_user("carol")) as socket:
        room_id = open_room(socket)
        say(socket, room_id, "hello")
        send(socket, "presence_update", status="away")
        receive_until(socket, "presence_update", lambda data: data["status"] == "away")
        # Envelopes reach the socket in the order published: every one before is done too.
        published = trace.published()
    assert len(published) >= 4  # online, room_created, new_message, away
    return published


def test_in_process_each_envelope_is_applied_once_before_it_is_delivered(tmp_path: Path) -> None:
    with running_hub(tmp_path / "store.db") as (hub, worker):
        trace = Trace(hub)
        for envelope in chat_in_a_room(worker, trace):
            assert trace.of(envelope) == ["published", "heard", "delivered"], envelope


def test_with_redis_an_envelope_is_applied_before_the_round_trip_and_when_heard(
    tmp_path: Path, redis_url: str
) -> None:
    with running_hub(tmp_path / "store.db", redis_url) as (hub, worker):
        trace = Trace(hub)
        for envelope in chat_in_a_room(worker, trace):
            steps = trace.of(envelope)
            assert steps == ["heard", "published", "heard", "delivered"], envelope
