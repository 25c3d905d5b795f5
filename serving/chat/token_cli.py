"""`make token`: print a chat token for local use, or a widget site's token with `--site`.

Apart from serving/chat/auth.py because it reads ChatSettings, whose defaults come from auth.
"""

from __future__ import annotations

import argparse
import sys

from models.settings_errors import load_settings
from serving.chat.auth import WIDGET_TOKEN_MAX_TTL_S, Role, issue_site_token, issue_token
from serving.chat.settings import ChatSettings


def main(argv: list[str] | None = None) -> int:
    """Print a token for local use (CHAT_JWT_SECRET, or a widget site's key with --site)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--user", required=True)
    parser.add_argument("--role", choices=[role.value for role in Role], default="customer")
    parser.add_argument("--ttl", type=int, default=None, help="seconds (default CHAT_TOKEN_TTL_S)")
    parser.add_argument("--site", help="a site token of this widget site (CHAT_WIDGET_KEYS)")
    args = parser.parse_args(argv)
    try:
        settings = load_settings(ChatSettings)
        if args.site is not None:
            keys = settings.site_keys()
            if args.site not in keys:
                raise ValueError(f"no widget site {args.site!r} in CHAT_WIDGET_KEYS")
            ttl_s = min(args.ttl or 300, WIDGET_TOKEN_MAX_TTL_S)
            print(issue_site_token(args.site, keys[args.site], args.user, ttl_s))
            return 0
        ttl_s = args.ttl or settings.token_ttl_s
        print(issue_token(settings.require_secret(), args.user, args.role, ttl_s))
    except ValueError as problem:  # SettingsProblem, no secret, a refused user id
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
