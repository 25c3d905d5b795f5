"""The chat wire protocol: JSON frames `{"type": ..., "data": {...}}` (see serving/README.md).

Client frames are parsed into typed models here, so the hub only ever sees valid input.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
)

Id = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
ShortText = Annotated[str, StringConstraints(max_length=2000)]
MAX_SEQ = 2**63 - 1
# The largest message the WebSocket layer reads (serving/chat/connections.py). A frame up to
# this size is read and answered with an `error` 413 over CHAT_MAX_FRAME_BYTES (the socket lives);
# a bigger one closes the socket with 1009 once its header is read. uvicorn's default, 16 MiB,
# let any customer make the worker buffer 16 MiB a message (and copy it) before the 413.
MAX_MESSAGE_BYTES = 1024 * 1024


class ErrorCode:
    """Error codes carried by `error` frames (HTTP-like, so clients know them already)."""

    BAD_FRAME = 400
    FORBIDDEN = 403
    NOT_FOUND = 404
    CONFLICT = 409
    TOO_LARGE = 413
    RATE_LIMITED = 429
    INTERNAL = 500


class CloseCode:
    """WebSocket close codes the server uses."""

    POLICY_VIOLATION = 1008  # missing, bad or expired token
    HEARTBEAT_TIMEOUT = 4408  # nothing heard from the client within the heartbeat timeout
    TOO_MANY_SOCKETS = 4429  # the user already holds CHAT_MAX_SOCKETS_PER_USER sockets here
    SHUTDOWN = 1001


class FrameError(ValueError):
    """A client frame that cannot be acted on; becomes an `error` frame."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class RoomType(StrEnum):
    """Kinds of rooms; `support` rooms are opened by the server, never by create_room."""

    PUBLIC = "public"
    PRIVATE = "private"
    DIRECT = "direct"
    SUPPORT = "support"


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        # PostgreSQL text cannot hold U+0000: the store would refuse the row after the frame was
        # accepted (a 500). No chat text needs it, so the frame is refused up front on any store.
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and "\x00" in text for text in texts):
            raise ValueError("contains the NUL character (U+0000)")
        return value


class ChatMessage(_Data):
    room_id: Id | None = None
    content: str = Field(min_length=1)
    client_msg_id: Id


class Typing(_Data):
    room_id: Id
    is_typing: bool = True


class ReadReceipt(_Data):
    message_id: Id


class PresenceUpdate(_Data):
    status: Literal["online", "away", "busy", "offline"]


class CreateRoom(_Data):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]
    type: Literal["public", "private", "direct"]
    member_ids: list[Id] = Field(default_factory=list, max_length=200)


class RoomRef(_Data):
    room_id: Id


# support_requests.issue_type holds 64 characters; PostgreSQL refuses a longer value outright.
IssueType = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class SupportRequest(_Data):
    issue_type: IssueType | None = None
    description: ShortText = ""


class SupportEscalate(_Data):
    request_id: Id
    reason: ShortText = ""


class SupportResolve(_Data):
    request_id: Id
    resolution: ShortText = ""


class RateSupport(_Data):
    request_id: Id
    rating: int = Field(ge=1, le=5)
    comment: ShortText = ""


class LabelMessage(_Data):
    message_id: Id
    intent: Id
    new_intent: bool = False  # True: a name the model does not know yet (agent_desk.py)


class AgentDeskQuery(_Data):
    request_id: Id | None = None  # the request being handled: its hand-off and earlier ones


class NewIntentsQuery(_Data):
    limit: int = Field(20, ge=1, le=50)


class LabelCluster(_Data):
    cluster_id: Id
    intent: Id
    new_intent: bool = False  # True: a name the model does not know yet
    exclude_message_ids: list[Id] = Field(default_factory=list, max_length=500)


class Resume(_Data):
    # A seq is a 64-bit row id: anything larger cannot exist and would overflow the query.
    last_seq: int = Field(ge=0, le=MAX_SEQ)


class Heartbeat(_Data):
    pass


FRAME_TYPES: dict[str, type[_Data]] = {
    "chat_message": ChatMessage,
    "typing": Typing,
    "read_receipt": ReadReceipt,
    "presence_update": PresenceUpdate,
    "create_room": CreateRoom,
    "join_room": RoomRef,
    "leave_room": RoomRef,
    "support_request": SupportRequest,
    "support_escalate": SupportEscalate,
    "support_resolve": SupportResolve,
    "rate_support": RateSupport,
    "label_message": LabelMessage,
    "new_intents": NewIntentsQuery,
    "label_cluster": LabelCluster,
    "agent_desk": AgentDeskQuery,
    "resume": Resume,
    "heartbeat": Heartbeat,
}
AGENT_ONLY = frozenset(
    {"support_resolve", "label_message", "new_intents", "label_cluster", "agent_desk"}
)


def parse_frame(raw: str | bytes, max_bytes: int) -> tuple[str, Any]:
    """The frame type and its validated data, or FrameError (400 or 413)."""
    size = len(raw.encode() if isinstance(raw, str) else raw)
    if size > max_bytes:
        raise FrameError(ErrorCode.TOO_LARGE, f"frame is {size} bytes; the maximum is {max_bytes}")
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FrameError(ErrorCode.BAD_FRAME, f"frame is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or not isinstance(document.get("type"), str):
        raise FrameError(ErrorCode.BAD_FRAME, 'a frame is an object {"type": ..., "data": {...}}')
    frame_type = document["type"]
    model = FRAME_TYPES.get(frame_type)
    if model is None:
        known = ", ".join(sorted(FRAME_TYPES))
        raise FrameError(ErrorCode.BAD_FRAME, f"unknown frame type {frame_type!r}; known: {known}")
    data = document.get("data", {})
    if data is None:
        data = {}
    try:
        return frame_type, model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'data'}: {error['msg']}"
            for error in exc.errors()
        )
        raise FrameError(ErrorCode.BAD_FRAME, f"{frame_type}: {problems}") from exc


def encode(frame_type: str, data: Mapping[str, Any]) -> str:
    """A server frame as JSON text."""
    # orjson writes dicts (TypedDicts are dicts) but no other mapping.
    document = data if isinstance(data, dict) else dict(data)
    return orjson.dumps({"type": frame_type, "data": document}).decode()


def error_frame(code: int, message: str, **extra: Any) -> str:
    """An `error` frame."""
    return encode("error", {"code": code, "message": message, **extra})
