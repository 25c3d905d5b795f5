"""One handler per client frame type. Each validates permissions, writes, then fans out."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from serving.chat import protocol as p
from serving.chat.auth import BOT_USER_ID, Identity, Role
from serving.chat.bot import HANDOFF, RESOLVED
from serving.chat.broker import Envelope
from serving.chat.protocol import ErrorCode, FrameError, RoomType
from serving.chat.responder import BotResponder, notify_agents
from serving.chat.room_handlers import create_room, join_room, leave_room
from serving.chat.store import user_audience

if TYPE_CHECKING:
    from serving.chat.connections import Connection
    from serving.chat.hub import ChatHub


class FrameHandlers:
    """Frame handlers of a hub."""

    def __init__(self, hub: ChatHub) -> None:
        self.hub = hub
        self.bot = BotResponder(hub)

    async def dispatch(self, connection: Connection, frame_type: str, data: Any) -> None:
        """Run the handler of a validated frame."""
        await getattr(self, f"on_{frame_type}")(connection, data)

    async def _room_for(self, identity: Identity, room_id: str) -> dict[str, Any]:
        room = await self.hub.db(self.hub.store.rooms.room, room_id)
        if room is None:
            raise FrameError(ErrorCode.NOT_FOUND, f"room {room_id} does not exist")
        if identity.user_id not in room["member_ids"]:
            raise FrameError(ErrorCode.FORBIDDEN, f"you are not a member of room {room_id}")
        return room

    async def _request(self, identity: Identity, request_id: str) -> dict[str, Any]:
        request = await self.hub.db(self.hub.store.support.get, request_id)
        if request is None:
            raise FrameError(ErrorCode.NOT_FOUND, f"support request {request_id} does not exist")
        if identity.role is Role.CUSTOMER and request["customer_id"] != identity.user_id:
            raise FrameError(ErrorCode.FORBIDDEN, "that support request is not yours")
        return request

    async def _open_support(
        self, customer: Identity, issue_type: str | None = None, description: str | None = None
    ) -> dict[str, Any]:
        hub = self.hub
        request, created = await hub.db(
            hub.store.support.open_conversation, customer, None, issue_type, description
        )
        if created:
            data = {"request_id": request["request_id"], "room_id": request["room_id"]}
            await hub.emit(
                user_audience(customer.user_id),
                "support_request_created",
                data,
                (customer.user_id,),
            )
        return request

    # --- messages -------------------------------------------------------------------------

    async def on_chat_message(self, connection: Connection, data: p.ChatMessage) -> None:
        """Store, acknowledge, fan out; in a support room the bot answers the customer."""
        hub, identity = self.hub, connection.identity
        content = data.content.strip()
        if not content:
            raise FrameError(ErrorCode.BAD_FRAME, "chat_message: content must not be blank")
        if len(content) > hub.settings.max_content_chars:
            raise FrameError(
                ErrorCode.TOO_LARGE,
                f"content is {len(content)} characters; the maximum is "
                f"{hub.settings.max_content_chars}",
            )
        if data.room_id is None:
            if identity.role is not Role.CUSTOMER:
                raise FrameError(ErrorCode.BAD_FRAME, "chat_message: agents must give a room_id")
            request = await self._open_support(identity)
            room = await self._room_for(identity, request["room_id"])
        else:
            room = await self._room_for(identity, data.room_id)
        stored = await hub.db(
            hub.store.insert_message,
            room["room_id"],
            identity.user_id,
            identity.role.value,
            content,
            data.client_msg_id,
        )
        connection.send(
            p.encode(
                "ack",
                {
                    "client_msg_id": data.client_msg_id,
                    "message_id": stored.message_id,
                    "seq": stored.seq,
                    "room_id": room["room_id"],
                    "duplicate": stored.duplicate,
                },
            )
        )
        if stored.duplicate:
            return
        # The members were read with the room a moment ago: no second look-up per message.
        await hub.publish_stored("new_message", stored.data, room["member_ids"])
        if room["room_type"] == RoomType.SUPPORT and identity.role is Role.CUSTOMER:
            await self.bot.respond(stored.message_id, content, room)

    async def on_typing(self, connection: Connection, data: p.Typing) -> None:
        """Tell the room someone is typing (not stored)."""
        room = await self._room_for(connection.identity, data.room_id)
        await self.hub.ephemeral(
            "typing",
            {
                "room_id": data.room_id,
                "user_id": connection.identity.user_id,
                "is_typing": data.is_typing,
            },
            room["member_ids"],
            exclude=connection.identity.user_id,
        )

    async def on_read_receipt(self, connection: Connection, data: p.ReadReceipt) -> None:
        """Tell a message's sender it was read."""
        hub, identity = self.hub, connection.identity
        info = await hub.db(hub.store.message_info, data.message_id)
        if info is None:
            raise FrameError(ErrorCode.NOT_FOUND, f"message {data.message_id} does not exist")
        await self._room_for(identity, info["room_id"])
        if info["sender_id"] in (identity.user_id, BOT_USER_ID):
            return
        await hub.emit(
            user_audience(info["sender_id"]),
            "read_receipt",
            {
                "message_id": data.message_id,
                "room_id": info["room_id"],
                "reader_id": identity.user_id,
            },
            (info["sender_id"],),
        )

    async def on_presence_update(self, connection: Connection, data: p.PresenceUpdate) -> None:
        """Change and announce this user's status."""
        connection.status = data.status
        await self.announce_presence(connection.identity, data.status)

    async def announce_presence(self, identity: Identity, status: str) -> None:
        """Tell everyone sharing a room with the user (and the agents) about their status."""
        hub = self.hub
        peers = {identity.user_id, *await hub.db(hub.store.rooms.peers, identity.user_id)}
        peers.discard(BOT_USER_ID)
        frame = p.encode("presence_update", {"user_id": identity.user_id, "status": status})
        await hub.broker.publish(Envelope(frame, tuple(peers), ("agent",)))

    async def on_label_message(self, connection: Connection, data: p.LabelMessage) -> None:
        """An agent labels a customer message with its true intent (training data)."""
        hub = self.hub
        info = await hub.db(hub.store.message_info, data.message_id)
        if info is None:
            raise FrameError(ErrorCode.NOT_FOUND, f"message {data.message_id} does not exist")
        if info["speaker"] != Role.CUSTOMER.value:
            raise FrameError(ErrorCode.BAD_FRAME, "only customer messages can be labelled")
        label_id = await hub.db(
            hub.store.record_label,
            data.message_id,
            data.intent,
            connection.identity.user_id,
            info["text"],
        )
        connection.send(
            p.encode(
                "label_recorded",
                {"message_id": data.message_id, "intent": data.intent, "label_id": label_id},
            )
        )

    async def on_resume(self, connection: Connection, data: p.Resume) -> None:
        """Replay every event after `last_seq` this user may see, in order."""
        hub = self.hub
        events = await hub.db(
            hub.store.replay, connection.identity, data.last_seq, hub.settings.replay_limit
        )
        for event in events:
            connection.send(p.encode(event["type"], event["data"]))
        newest = events[-1]["data"]["seq"] if events else data.last_seq
        more = len(events) == hub.settings.replay_limit
        connection.send(
            p.encode("resume_complete", {"replayed": len(events), "last_seq": newest, "more": more})
        )
        if connection.identity.role is Role.AGENT:
            # Replayed hand-offs may since have been resolved elsewhere: this is the live queue.
            queue = await hub.db(hub.store.support.agent_queue)
            connection.send(
                p.encode(
                    "support_queue",
                    {
                        "requests": [
                            {**request, "reason": request["handoff_reason"]} for request in queue
                        ]
                    },
                )
            )

    async def on_heartbeat(self, connection: Connection, data: p.Heartbeat) -> None:
        """Answer a client heartbeat."""
        connection.send(p.encode("pong", {}))

    # --- rooms (rules in serving/chat/rooms.py) and support ------------------------------

    async def on_create_room(self, connection: Connection, data: p.CreateRoom) -> None:
        """Create a public, private (invite-only) or direct room."""
        await create_room(self.hub, connection, data)

    async def on_join_room(self, connection: Connection, data: p.RoomRef) -> None:
        """Join a room (agents take support conversations this way)."""
        await join_room(self.hub, connection, data)

    async def on_leave_room(self, connection: Connection, data: p.RoomRef) -> None:
        """Leave a room (direct rooms cannot be left)."""
        await leave_room(self.hub, connection, data)

    async def on_support_request(self, connection: Connection, data: p.SupportRequest) -> None:
        """A customer asks for a human."""
        hub, identity = self.hub, connection.identity
        if identity.role is not Role.CUSTOMER:
            raise FrameError(ErrorCode.FORBIDDEN, "support_request is for customers")
        request = await self._open_support(identity, data.issue_type, data.description or None)
        if await hub.db(hub.store.support.hand_off, request["request_id"], "customer_request"):
            await self.bot.say(
                request["room_id"],
                hub.catalogue.reply(HANDOFF),
                action="handoff",
                handoff_reason="customer_request",
            )
            await notify_agents(
                hub, {**request, "description": data.description}, "customer_request"
            )

    async def on_support_escalate(self, connection: Connection, data: p.SupportEscalate) -> None:
        """Raise a request's priority; a bot conversation goes to a human with it."""
        hub = self.hub
        request = await self._request(connection.identity, data.request_id)
        if request["status"] == "resolved":
            raise FrameError(ErrorCode.CONFLICT, "that support request is already resolved")
        await hub.db(hub.store.support.escalate, data.request_id, data.reason)
        updated = await hub.db(hub.store.support.get, data.request_id)
        await hub.emit_to_room(
            request["room_id"],
            "support_request_escalated",
            {
                "request_id": data.request_id,
                "room_id": request["room_id"],
                "reason": data.reason,
                "escalations": updated["escalations"],
                "status": updated["status"],
                "by": connection.identity.user_id,
            },
            roles=("agent",),
        )

    async def on_support_resolve(self, connection: Connection, data: p.SupportResolve) -> None:
        """An agent closes a request; the customer is asked for a rating."""
        hub = self.hub
        request = await self._request(connection.identity, data.request_id)
        if not await hub.db(
            hub.store.support.resolve, data.request_id, connection.identity.user_id, data.resolution
        ):
            raise FrameError(ErrorCode.CONFLICT, "that support request is already resolved")
        await hub.emit_to_room(
            request["room_id"],
            "support_request_resolved",
            {
                "request_id": data.request_id,
                "room_id": request["room_id"],
                "resolution": data.resolution,
                "agent_id": connection.identity.user_id,
            },
            roles=("agent",),
        )
        await self.bot.say(request["room_id"], hub.catalogue.reply(RESOLVED), action="resolved")

    async def on_rate_support(self, connection: Connection, data: p.RateSupport) -> None:
        """The customer's satisfaction rating of a support conversation."""
        if connection.identity.role is not Role.CUSTOMER:
            raise FrameError(ErrorCode.FORBIDDEN, "rate_support is for customers")
        await self._request(connection.identity, data.request_id)
        await self.hub.db(self.hub.store.support.rate, data.request_id, data.rating)
        connection.send(
            p.encode("support_rated", {"request_id": data.request_id, "rating": data.rating})
        )
