"""One handler per client frame type. Each validates permissions, writes, then fans out.

Handlers see a `ChatContext` and the `Client` whose frame they handle, never the hub.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from conversations.schema import Speaker
from serving.chat import protocol as p
from serving.chat.agent_desk import AgentDesk, catalogue_intents, send_agent_desk
from serving.chat.auth import BOT_USER_ID, Identity, Role
from serving.chat.context import ChatContext, Client
from serving.chat.event_log import user_audience
from serving.chat.new_intents import label_cluster, list_new_intents
from serving.chat.presence import UserViews, announce_presence, read_view
from serving.chat.protocol import ErrorCode, FrameError
from serving.chat.redaction import customer_view
from serving.chat.responder import BotResponder
from serving.chat.room_handlers import create_room, join_room, leave_room
from serving.chat.rooms import Room
from serving.chat.support import SupportCase, SupportStatus
from serving.chat.turns import CREATED, CustomerMessageJob
from serving.inputs import is_blank


class FrameHandlers:
    """The handlers of every client frame type."""

    def __init__(
        self,
        context: ChatContext,
        bot: BotResponder,
        desk: AgentDesk | None = None,
        views: UserViews | None = None,
    ) -> None:
        self.context = context
        # Users' welcome seqs and presence peers; the hub keeps them current from the broker.
        self.views = views or UserViews(partial(context.db, read_view, context.store))
        self.bot = bot
        catalogue = bot.kit.catalogue
        self.desk = desk or AgentDesk(catalogue, catalogue_intents(catalogue))

    async def dispatch(self, client: Client, frame_type: str, data: Any) -> None:
        """Run the handler of a validated frame."""
        await getattr(self, f"on_{frame_type}")(client, data)

    async def _room_for(self, identity: Identity, room_id: str) -> Room:
        room = await self.context.db(self.context.store.rooms.room, room_id)
        if room is None:
            raise FrameError(ErrorCode.NOT_FOUND, f"room {room_id} does not exist")
        if identity.user_id not in room.member_ids:
            raise FrameError(ErrorCode.FORBIDDEN, f"you are not a member of room {room_id}")
        return room

    async def _request(self, identity: Identity, request_id: str) -> SupportCase:
        request = await self.context.db(self.context.store.support.get, request_id)
        if request is None:
            raise FrameError(ErrorCode.NOT_FOUND, f"support request {request_id} does not exist")
        if identity.role is Role.CUSTOMER and request.customer_id != identity.user_id:
            raise FrameError(ErrorCode.FORBIDDEN, "that support request is not yours")
        return request

    async def _open_support(
        self, customer: Identity, issue_type: str | None = None, description: str | None = None
    ) -> SupportCase:
        ctx = self.context
        request, created = await ctx.db(
            ctx.store.support.open_conversation, customer, None, issue_type, description
        )
        if created:
            await ctx.events.emit(
                user_audience(customer.user_id),
                "support_request_created",
                {"request_id": request.request_id, "room_id": request.room_id},
                (customer.user_id,),
            )
        return request

    # --- messages -------------------------------------------------------------------------

    async def on_chat_message(self, client: Client, data: p.ChatMessage) -> None:
        """Store, acknowledge, fan out; in a support room the bot answers the customer."""
        ctx, identity = self.context, client.identity
        content = data.content.strip()
        if is_blank(content):
            raise FrameError(ErrorCode.BAD_FRAME, "chat_message: content must not be blank")
        if len(content) > ctx.max_content_chars:
            raise FrameError(
                ErrorCode.TOO_LARGE,
                f"content is {len(content)} characters; the maximum is {ctx.max_content_chars}",
            )
        if data.room_id is None and identity.role is not Role.CUSTOMER:
            raise FrameError(ErrorCode.BAD_FRAME, "chat_message: agents must give a room_id")
        # One job of a group commit: room checks, the message and its event, and what the bot
        # reads to answer it (serving/chat/turns.py); the ack follows that commit.
        job = CustomerMessageJob(ctx.store, identity, data.room_id, content, data.client_msg_id)
        sent = await ctx.db.group(job, job.alone)
        room, stored, opened = sent.room, sent.stored, sent.opened
        if opened is not None:  # the customer's first message opened their conversation
            await ctx.events.deliver(CREATED, opened.event, opened.seq, (identity.user_id,))
        client.send(
            p.encode(
                "ack",
                {
                    "client_msg_id": data.client_msg_id,
                    "message_id": stored.message_id,
                    "seq": stored.seq,
                    "room_id": room.room_id,
                    "duplicate": stored.duplicate,
                },
            )
        )
        if stored.event is None:
            return  # a resend: stored and delivered the first time
        # The members were read with the room a moment ago: no second look-up per message.
        await ctx.events.publish_message("new_message", stored.event, room.member_ids)
        if sent.request is not None:  # a support room the bot owns
            await self.bot.answer(sent, content)

    async def on_typing(self, client: Client, data: p.Typing) -> None:
        """Tell the room someone is typing (not stored)."""
        room = await self._room_for(client.identity, data.room_id)
        user_id = client.identity.user_id
        await self.context.events.ephemeral(
            "typing",
            {"room_id": data.room_id, "user_id": user_id, "is_typing": data.is_typing},
            room.member_ids,
            exclude=user_id,
        )

    async def on_read_receipt(self, client: Client, data: p.ReadReceipt) -> None:
        """Tell a message's sender it was read."""
        ctx, identity = self.context, client.identity
        info = await ctx.db(ctx.store.message_info, data.message_id)
        if info is None:
            raise FrameError(ErrorCode.NOT_FOUND, f"message {data.message_id} does not exist")
        await self._room_for(identity, info.room_id)
        if info.sender_id in (identity.user_id, BOT_USER_ID):
            return
        await ctx.events.emit(
            user_audience(info.sender_id),
            "read_receipt",
            {
                "message_id": data.message_id,
                "room_id": info.room_id,
                "reader_id": identity.user_id,
            },
            (info.sender_id,),
        )

    async def on_presence_update(self, client: Client, data: p.PresenceUpdate) -> None:
        """Announce this user's status to their peers (serving/chat/presence.py)."""
        view = await self.views.view(client.identity)
        await announce_presence(self.context.events, client.identity, data.status, view.peers)

    async def on_label_message(self, client: Client, data: p.LabelMessage) -> None:
        """An agent labels a customer message with its true intent (training data)."""
        ctx = self.context
        info = await ctx.db(ctx.store.message_info, data.message_id)
        if info is None:
            raise FrameError(ErrorCode.NOT_FOUND, f"message {data.message_id} does not exist")
        if info.speaker is not Speaker.CUSTOMER:
            raise FrameError(ErrorCode.BAD_FRAME, "only customer messages can be labelled")
        self.desk.check_label(data.intent, data.new_intent)  # a typo never becomes a label
        label_id = await ctx.db(
            ctx.store.record_label,
            data.message_id,
            data.intent,
            client.identity.user_id,
            info.text,
            data.new_intent,
        )
        recorded = {"message_id": data.message_id, "intent": data.intent, "label_id": label_id}
        client.send(p.encode("label_recorded", {**recorded, "new_intent": data.new_intent}))

    async def on_agent_desk(self, client: Client, data: p.AgentDeskQuery) -> None:
        """An agent asks for known intents, canned replies and a request's context."""
        await send_agent_desk(self.context, client, self.desk, data)

    async def on_new_intents(self, client: Client, data: p.NewIntentsQuery) -> None:
        """An agent asks for the "label these" queue (serving/chat/new_intents.py)."""
        await list_new_intents(self.context, client, data)

    async def on_label_cluster(self, client: Client, data: p.LabelCluster) -> None:
        """An agent names a candidate new intent: every member becomes a training label."""
        await label_cluster(self.context, client, data)

    async def on_resume(self, client: Client, data: p.Resume) -> None:
        """Replay every event after `last_seq` this user may see, in order."""
        ctx = self.context
        events = await ctx.db(
            ctx.store.events.replay, client.identity, data.last_seq, ctx.replay_limit
        )
        is_agent = client.identity.role is Role.AGENT
        for event in events:
            shown = event.data if is_agent else customer_view(event.type, event.data)
            client.send(p.encode(event.type, shown))
        newest = events[-1].data["seq"] if events else data.last_seq
        more = len(events) == ctx.replay_limit
        client.send(
            p.encode("resume_complete", {"replayed": len(events), "last_seq": newest, "more": more})
        )
        if client.identity.role is Role.AGENT:
            # Replayed hand-offs may since have been resolved elsewhere: this is the live queue.
            queue = await ctx.db(ctx.store.support.agent_queue)
            # The customer's own words when they escalated, else the hand-off's reason code.
            requests = [
                {**request.to_wire(), "reason": request.escalation_reason or request.handoff_reason}
                for request in queue
            ]
            client.send(p.encode("support_queue", {"requests": requests}))

    async def on_heartbeat(self, client: Client, data: p.Heartbeat) -> None:
        """Answer a client heartbeat."""
        client.send(p.encode("pong", {}))

    # --- rooms (rules in serving/chat/rooms.py) and support ------------------------------

    async def on_create_room(self, client: Client, data: p.CreateRoom) -> None:
        """Create a public, private (invite-only) or direct room."""
        await create_room(self.context, client, data)

    async def on_join_room(self, client: Client, data: p.RoomRef) -> None:
        """Join a room (agents take support conversations this way)."""
        await join_room(self.context, client, data)

    async def on_leave_room(self, client: Client, data: p.RoomRef) -> None:
        """Leave a room (direct rooms cannot be left)."""
        await leave_room(self.context, client, data)

    async def on_support_request(self, client: Client, data: p.SupportRequest) -> None:
        """A customer asks for a human."""
        identity = client.identity
        if identity.role is not Role.CUSTOMER:
            raise FrameError(ErrorCode.FORBIDDEN, "support_request is for customers")
        request = await self._open_support(identity, data.issue_type, data.description or None)
        await self.bot.customer_asked(request, data.description)

    async def on_support_escalate(self, client: Client, data: p.SupportEscalate) -> None:
        """Raise a request's priority; a bot conversation goes to a human with it."""
        ctx = self.context
        request = await self._request(client.identity, data.request_id)
        if request.status is SupportStatus.RESOLVED:
            raise FrameError(ErrorCode.CONFLICT, "that support request is already resolved")
        await ctx.db(ctx.store.support.escalate, data.request_id, data.reason)
        updated = await ctx.db(ctx.store.support.get, data.request_id)
        assert updated is not None  # requests are never deleted
        await ctx.events.emit_to_room(
            request.room_id,
            "support_request_escalated",
            {
                "request_id": data.request_id,
                "room_id": request.room_id,
                "reason": data.reason,
                "escalations": updated.escalations,
                "status": updated.status.value,
                "by": client.identity.user_id,
            },
            roles=("agent",),
        )

    async def on_support_resolve(self, client: Client, data: p.SupportResolve) -> None:
        """An agent closes a request; the customer is asked for a rating."""
        ctx, agent_id = self.context, client.identity.user_id
        request = await self._request(client.identity, data.request_id)
        if not await ctx.db(ctx.store.support.resolve, data.request_id, agent_id, data.resolution):
            raise FrameError(ErrorCode.CONFLICT, "that support request is already resolved")
        await ctx.events.emit_to_room(
            request.room_id,
            "support_request_resolved",
            {
                "request_id": data.request_id,
                "room_id": request.room_id,
                "resolution": data.resolution,
                "agent_id": agent_id,
            },
            roles=("agent",),
        )
        await self.bot.resolved(request.room_id)

    async def on_rate_support(self, client: Client, data: p.RateSupport) -> None:
        """The customer's satisfaction rating of a support conversation."""
        if client.identity.role is not Role.CUSTOMER:
            raise FrameError(ErrorCode.FORBIDDEN, "rate_support is for customers")
        await self._request(client.identity, data.request_id)
        await self.context.db(self.context.store.support.rate, data.request_id, data.rating)
        # Stored (replayable): a reloaded page must not ask again for a rating already given.
        customer_id = client.identity.user_id
        rated = {"request_id": data.request_id, "rating": data.rating}
        await self.context.events.emit(
            user_audience(customer_id), "support_rated", rated, (customer_id,)
        )
