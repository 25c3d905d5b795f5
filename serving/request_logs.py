"""A client's bad request is logged as one INFO line, not as a server error with a traceback.

BentoML 1.4's API handler (`_bentoml_impl/server/app.py`, `api_endpoint_wrapper`) answers every
rejected body with a 400 and first calls `log_exception(request)` for it, which logs at ERROR with
the traceback of the pydantic ValidationError. That handler has no option to change this, so the
record is rewritten where it is logged: on `log_exception`'s own logger, for client errors only.
Server errors (anything else) keep their level and traceback.
"""

from __future__ import annotations

import logging

from bentoml.exceptions import BentoMLException
from pydantic import ValidationError

# The logger `bentoml._internal.server.http_app.log_exception` writes to.
BENTOML_HANDLER_LOGGER = "bentoml._internal.server.http_app"


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
