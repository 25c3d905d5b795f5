"""Room frames: create, join, leave. The rules themselves are in serving/chat/rooms.py.

Who may put whom in a room: only agents create rooms with other members (private, direct, or a
public room with members). A customer's room starts with the customer alone; others join public
rooms themselves. Otherwise any customer could pull any user id into a room they cannot leave,
message them and watch their presence.
"""

from __future__ import annotations

from serving.chat import protocol as p
from serving.chat.auth import BOT_USER_ID, Role
from serving.chat.context import ChatContext, Client
from serving.chat.event_log import room_audience
from serving.chat.protocol import ErrorCode, FrameError, RoomType
from serving.chat.redaction import customer_view

HISTORY_ON_JOIN = 50


async def create_room(ctx: ChatContext, client: Client, data: p.CreateRoom) -> None:
    """A public, private (invite-only: the members listed) or direct (two people) room."""
    identity = client.identity
    members = [m for m in dict.fromkeys(data.member_ids) if m != identity.user_id]
    if BOT_USER_ID in members:
        raise FrameError(ErrorCode.BAD_FRAME, "the bot joins support rooms only")
    if members and identity.role is not Role.AGENT:
        raise FrameError(
            ErrorCode.FORBIDDEN,
            "only agents create rooms with other members; create a public room and let "
            "people join it",
        )
    room_type = RoomType(data.type)
    if room_type is RoomType.DIRECT and len(members) != 1:
        raise FrameError(ErrorCode.BAD_FRAME, "a direct room has exactly one other member")
    room = await ctx.db(ctx.store.rooms.create_room, data.name, room_type, identity, members)
    await ctx.events.emit_to_room(
        room.room_id,
        "room_created",
        {
            "room_id": room.room_id,
            "name": room.name,
            "type": room.room_type.value,
            "creator_id": room.creator_id,
            "member_ids": list(room.member_ids),
        },
    )


async def join_room(ctx: ChatContext, client: Client, data: p.RoomRef) -> None:
    """Join a public room, a support room (agents), or a private room one was invited to."""
    identity = client.identity
    room = await ctx.db(ctx.store.rooms.room, data.room_id)
    if room is None:
        raise FrameError(ErrorCode.NOT_FOUND, f"room {data.room_id} does not exist")
    kind = room.room_type
    if identity.user_id not in room.member_ids:
        if kind in (RoomType.PRIVATE, RoomType.DIRECT):
            raise FrameError(ErrorCode.FORBIDDEN, f"room {data.room_id} is invite-only")
        if kind is RoomType.SUPPORT and identity.role is not Role.AGENT:
            raise FrameError(ErrorCode.FORBIDDEN, "only agents join other people's support rooms")
        await ctx.db(ctx.store.rooms.add_member, data.room_id, identity)
    if kind is RoomType.SUPPORT and identity.role is Role.AGENT:
        request = await ctx.db(ctx.store.support.latest_for_room, data.room_id)
        if request is not None and await ctx.db(
            ctx.store.support.assign, request.request_id, identity.user_id
        ):
            await ctx.events.emit_to_room(
                data.room_id,
                "support_request_assigned",
                {
                    "request_id": request.request_id,
                    "room_id": data.room_id,
                    "agent_id": identity.user_id,
                },
                roles=("agent",),
            )
    await ctx.events.emit_to_room(
        data.room_id,
        "member_joined",
        {"room_id": data.room_id, "user_id": identity.user_id, "role": identity.role.value},
    )
    history = await ctx.db(ctx.store.events.room_history, data.room_id, HISTORY_ON_JOIN)
    document = {"room_id": data.room_id, "name": room.name, "type": kind.value, "messages": history}
    if identity.role is not Role.AGENT:
        document = dict(customer_view("room_history", document))
    client.send(p.encode("room_history", document))


async def leave_room(ctx: ChatContext, client: Client, data: p.RoomRef) -> None:
    """Leave; the next member becomes creator, and the last one out deletes the room."""
    identity = client.identity
    room = await ctx.db(ctx.store.rooms.room, data.room_id)
    if room is None:
        raise FrameError(ErrorCode.NOT_FOUND, f"room {data.room_id} does not exist")
    if identity.user_id not in room.member_ids:
        raise FrameError(ErrorCode.CONFLICT, f"you are not a member of room {data.room_id}")
    if room.room_type is RoomType.DIRECT:
        raise FrameError(ErrorCode.FORBIDDEN, "direct rooms cannot be left")
    if room.room_type is RoomType.SUPPORT and identity.role is not Role.AGENT:
        # The customer's open request keeps pointing at this room: leaving it (the last human
        # out deletes it) would lock them out of their own conversation.
        raise FrameError(
            ErrorCode.FORBIDDEN, "a support conversation ends when it is resolved, not left"
        )
    departure = await ctx.db(ctx.store.rooms.remove_member, data.room_id, identity.user_id)
    await ctx.events.emit(
        room_audience(data.room_id),
        "member_left",
        {
            "room_id": data.room_id,
            "user_id": identity.user_id,
            "creator_id": departure.creator_id,
            "room_deleted": departure.deleted,
        },
        (*departure.member_ids, identity.user_id),
    )
