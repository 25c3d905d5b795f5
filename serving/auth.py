"""Who may label: the credentials /feedback accepts and the trust level each gives a label.

- `X-API-Key` equal to the admin key: `reviewed`, labelled by "admin";
- `X-API-Key` equal to a key of SERVING_FEEDBACK_API_KEYS: `service`, labelled by the key's name;
- `Authorization: Bearer <chat JWT>` of a support agent: `agent`, labelled by the agent's user id.

A customer's token is refused (403); anything else is a 401 that says what to send.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr
from starlette.responses import JSONResponse

from conversations.schema import LabelTrust
from serving.chat.auth import TOKEN_MAX_LIFETIME_S, AuthError, Role, verify_token

ADMIN_LABELLER = "admin"
# RFC 9110: a 401 names the schemes that would be accepted.
WWW_AUTHENTICATE = 'Bearer realm="feedback", ApiKey realm="feedback" header="X-API-Key"'


@dataclass(frozen=True)
class Labeller:
    """The authenticated source of a label."""

    trust: LabelTrust
    labelled_by: str


class CredentialError(Exception):
    """A request that may not label: `status` is 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> JSONResponse:
        """The JSON answer; a 401 names the accepted schemes."""
        headers = {"WWW-Authenticate": WWW_AUTHENTICATE} if self.status == 401 else None
        return JSONResponse({"error": self.message}, status_code=self.status, headers=headers)


def _same(given: str, expected: SecretStr) -> bool:
    return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())


class FeedbackAuthenticator:
    """Checks the credential of one /feedback request (pure: no I/O, no clock but the JWT's)."""

    def __init__(
        self,
        service_keys: Mapping[str, SecretStr],
        admin_key: SecretStr | None,
        chat_secret: str | None,
        token_max_lifetime_s: int = TOKEN_MAX_LIFETIME_S,
    ) -> None:
        self.service_keys = dict(service_keys)
        self.admin_key = admin_key
        self.chat_secret = chat_secret
        self.token_max_lifetime_s = token_max_lifetime_s

    def authenticate(self, api_key: str | None, authorization: str | None) -> Labeller:
        """The labeller behind the request's headers, else CredentialError.

        An X-API-Key header, when present, decides alone: a wrong key is not retried as a token.
        """
        if api_key is not None:
            return self._by_key(api_key)
        if authorization is not None:
            return self._by_token(authorization)
        raise CredentialError(
            401,
            "feedback needs a credential: an X-API-Key header or "
            "'Authorization: Bearer <agent JWT>'",
        )

    def _by_key(self, api_key: str) -> Labeller:
        if self.admin_key is not None and _same(api_key, self.admin_key):
            return Labeller(LabelTrust.REVIEWED, ADMIN_LABELLER)
        # Compare with every key (no early exit), so timing does not tell how many matched.
        matches = [name for name, key in self.service_keys.items() if _same(api_key, key)]
        if matches:
            return Labeller(LabelTrust.SERVICE, matches[0])
        raise CredentialError(401, "the X-API-Key is not valid")

    def _by_token(self, authorization: str) -> Labeller:
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise CredentialError(401, "the Authorization header must be 'Bearer <agent JWT>'")
        if self.chat_secret is None:
            raise CredentialError(401, "bearer tokens are not accepted: CHAT_JWT_SECRET is not set")
        try:
            identity = verify_token(self.chat_secret, token.strip(), self.token_max_lifetime_s)
        except AuthError as exc:
            raise CredentialError(401, f"bearer token refused: {exc}") from exc
        if identity.role is not Role.AGENT:
            raise CredentialError(403, f"role {identity.role.value} may not label")
        return Labeller(LabelTrust.AGENT, identity.user_id)
