"""HS256 JWTs for chat connections: claims `sub` (user id), `role` (customer | agent), `exp`.

`python -m serving.chat.token_cli --user alice --role customer` prints one (that is `make token`);
with `--site acme` a site token signed with that widget site's key, as the site's backend would.

Widget sites never hold CHAT_JWT_SECRET (whoever holds it signs agent tokens). Each site gets a
key of its own (CHAT_WIDGET_KEYS, `{site: key}`); its backend signs a short-lived *site token*
for its signed-in customer (header `kid` = the site, claims `sub`, `iat`, `exp`, at most
WIDGET_TOKEN_MAX_TTL_S apart), and the widget's panel exchanges it at `POST /chat/widget/session`
for a chat token of the customer `site:sub`: a site key can only ever speak for that site's
customers, never an agent nor another site's customer.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

import jwt

ALGORITHM = "HS256"
BOT_USER_ID = "bot"
# The store's user-id columns hold 128 characters; PostgreSQL refuses a longer id on every write.
USER_ID_MAX_CHARS = 128
# A site token only proves who is signed in on the site right now: minutes, not a session.
WIDGET_TOKEN_MAX_TTL_S = 600
# A chat token is a session: a day at most, so a leaked token does not stay good for ever.
TOKEN_MAX_LIFETIME_S = 24 * 3600
CLOCK_SKEW_S = 60
# The site's user id: printable, no separators that would blur `site:sub` or the store's columns.
WIDGET_SUB = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")
# A socket's token may travel as its second WebSocket subprotocol, after this one, instead of in
# `?token=`: a URL's query is written to reverse proxies' access logs, handshake headers are not.
BEARER_PROTOCOL = "bearer"


class Role(StrEnum):
    """Who a connection speaks for."""

    CUSTOMER = "customer"
    AGENT = "agent"


class AuthError(ValueError):
    """A token that does not identify anyone; the message says why."""


@dataclass(frozen=True)
class Identity:
    """The authenticated user of a connection."""

    user_id: str
    role: Role


def issue_token(secret: str, user_id: str, role: Role | str, ttl_s: int) -> str:
    """A signed token for `user_id` valid for `ttl_s` seconds."""
    if not user_id or user_id == BOT_USER_ID:
        raise AuthError(f"user id {user_id!r} is not allowed")
    now = int(time.time())
    claims = {"sub": user_id, "role": Role(role).value, "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify_token(
    secret: str, token: str | None, max_lifetime_s: int = TOKEN_MAX_LIFETIME_S
) -> Identity:
    """The identity in a valid token living at most `max_lifetime_s`, else AuthError."""
    if not token:
        raise AuthError("a token is required (?token=JWT)")
    try:
        claims = jwt.decode(
            token, secret, algorithms=[ALGORITHM], options={"require": ["sub", "role", "exp"]}
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("token expired") from exc
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid token: {exc}") from exc
    _check_lifetime(claims, max_lifetime_s)
    try:
        role = Role(claims["role"])
    except ValueError as exc:
        raise AuthError(f"unknown role {claims['role']!r}") from exc
    user_id = str(claims["sub"])
    if not user_id or user_id == BOT_USER_ID or "\x00" in user_id:
        raise AuthError(f"user id {user_id[:40]!r} is not allowed")
    if len(user_id) > USER_ID_MAX_CHARS:
        raise AuthError(f"user id is longer than {USER_ID_MAX_CHARS} characters")
    return Identity(user_id, role)


def _check_lifetime(claims: Mapping[str, object], max_lifetime_s: int) -> None:
    """Refuse a token living longer than `max_lifetime_s` (exp - iat, or exp - now without iat)."""
    exp, iat = claims["exp"], claims.get("iat")
    if not isinstance(exp, int | float) or (iat is not None and not isinstance(iat, int | float)):
        raise AuthError("iat and exp are seconds")
    start = iat if iat is not None else time.time()
    if exp - start > max_lifetime_s:
        raise AuthError(f"a token lives at most {max_lifetime_s} s (CHAT_TOKEN_MAX_LIFETIME_S)")


def socket_token(
    query_token: str | None, subprotocols: Sequence[str]
) -> tuple[str | None, str | None]:
    """The token of a socket (subprotocols `bearer, <JWT>`, else `?token=`); the one to accept."""
    if len(subprotocols) >= 2 and subprotocols[0] == BEARER_PROTOCOL:
        return subprotocols[1], BEARER_PROTOCOL
    return query_token, None


def issue_site_token(site: str, key: str, user_id: str, ttl_s: int = 300) -> str:
    """A site token, as a widget site's backend signs it (any JWT library does the same)."""
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + ttl_s}
    return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": site})


def verify_site_token(keys: Mapping[str, str], token: str) -> Identity:
    """The customer a widget site vouches for (user id `site:sub`), else AuthError saying why."""
    try:
        site = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid site token: {exc}") from exc
    if not isinstance(site, str) or site not in keys:
        raise AuthError("unknown widget site (the token's kid is not in CHAT_WIDGET_KEYS)")
    try:
        claims = jwt.decode(
            token,
            keys[site],
            algorithms=[ALGORITHM],
            leeway=CLOCK_SKEW_S,
            options={"require": ["sub", "iat", "exp"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("site token expired: the site signs a fresh one") from exc
    except jwt.PyJWTError as exc:
        raise AuthError(f"invalid site token: {exc}") from exc
    if claims.get("role", Role.CUSTOMER.value) != Role.CUSTOMER.value:
        raise AuthError("a widget site signs customers only")
    if not isinstance(claims["exp"], int) or not isinstance(claims["iat"], int):
        raise AuthError("iat and exp are whole seconds")
    if claims["exp"] - claims["iat"] > WIDGET_TOKEN_MAX_TTL_S:
        raise AuthError(f"a site token lives at most {WIDGET_TOKEN_MAX_TTL_S} s (exp - iat)")
    sub = claims["sub"]
    if not isinstance(sub, str) or not WIDGET_SUB.fullmatch(sub):
        raise AuthError("sub is the site's user id: 1-64 of letters, digits and _ . @ + -")
    return Identity(f"{site}:{sub}", Role.CUSTOMER)
