"""A client's bad request is logged as one INFO line, not as a server error with a traceback.

BentoML 1.4's API handler (`_bentoml_impl/server/app.py`, `api_endpoint_wrapper`) answers every
rejected body with a 400 and first calls `log_exception(request)` for it, which logs at ERROR with
the traceback of the pydantic ValidationError. That handler has no option to change this, so the
record is rewritten where it is logged: on `log_exception`'s own logger, for client errors only.
Server errors (anything else) keep their level and traceback.

BentoML's access log (SERVING_ACCESS_LOG) writes the request path as the client sent it, after
percent-decoding: `GET /x%0A2026-12-01 [INFO] ...` wrote a second, forged line, and `%1B[`
terminal escapes reached whoever reads the log in a terminal. Its lines are escaped here.
"""

from __future__ import annotations

import logging

from bentoml.exceptions import BentoMLException
from pydantic import ValidationError

# The logger `bentoml._internal.server.http_app.log_exception` writes to.
BENTOML_HANDLER_LOGGER = "bentoml._internal.server.http_app"
# The logger of BentoML's access log middleware (`_internal/server/http/access.py`).
BENTOML_ACCESS_LOGGER = "bentoml.access"


def _summary(error: BaseException) -> str | None:
    """What the client got wrong (field paths and messages, never the values), or None."""
    if isinstance(error, ValidationError):
        problems = error.errors(include_url=False, include_input=False, include_context=False)
        return "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'body'}: {problem['msg']}"
            for problem in problems[:5]
        )
    status = getattr(getattr(error, "error_code", None), "value", 500)
    if isinstance(error, BentoMLException) and 400 <= status < 500:
        return f"{status}: {error}"
    return None


class ClientErrorLogFilter(logging.Filter):
    """Turns BentoML's ERROR-with-traceback for a rejected request into one INFO line."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite client errors in place; every record is still logged."""
        error = record.exc_info[1] if record.exc_info else None
        summary = _summary(error) if error is not None else None
        if summary is not None:
            where = record.getMessage().removeprefix("Exception on ")  # "/predict [POST]"
            record.msg, record.args = "%s rejected: %s", (where, summary)
            record.levelno, record.levelname = logging.INFO, logging.getLevelName(logging.INFO)
            record.exc_info, record.exc_text = None, None
        return True


def quiet_client_errors() -> None:
    """Install the filter once (idempotent: the service module may be imported twice)."""
    logger = logging.getLogger(BENTOML_HANDLER_LOGGER)
    if not any(isinstance(existing, ClientErrorLogFilter) for existing in logger.filters):
        logger.addFilter(ClientErrorLogFilter())


def escape_unprintable(text: str) -> str:
    """`text` with line breaks, escapes and other unprintable characters as `\\xNN`/`\\uNNNN`."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


class UnprintableEscapeFilter(logging.Filter):
    """Writes a record's message with its unprintable characters escaped: one record, one line."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Escape in place; every record is still logged."""
        message = record.getMessage()
        escaped = escape_unprintable(message)
        if escaped != message:
            record.msg, record.args = escaped, None
        return True


def escape_access_log() -> None:
    """Install the escaping filter on BentoML's access log once (idempotent)."""
    logger = logging.getLogger(BENTOML_ACCESS_LOGGER)
    if not any(isinstance(existing, UnprintableEscapeFilter) for existing in logger.filters):
        logger.addFilter(UnprintableEscapeFilter())
