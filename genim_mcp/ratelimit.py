"""How many payments a client may open: per MCP session and per remote address, in a sliding minute.

Every open payment is a row and a pay page; a client that opens them in a loop is refused in words before any
row is written. In memory: a restart forgets the counts, which only lets a client start over once.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque

from mcp.server.fastmcp import Context

WINDOW = 60.0


class PaymentRateLimit:
    def __init__(self, per_session: int, per_address: int) -> None:
        self.limits = {"session": per_session, "address": per_address}
        self._opened: defaultdict[tuple[str, str], deque[float]] = defaultdict(deque)

    def admit(self, ctx: Context | None) -> str | None:
        """Counts one more payment for the client behind `ctx`; None if allowed, else why not (nothing counted)."""
        now = time.monotonic()
        keys = [key for key in _client(ctx) if key[1]]
        for key in keys:
            opened = self._opened[key]
            while opened and opened[0] <= now - WINDOW:
                opened.popleft()
            if len(opened) >= self.limits[key[0]]:
                wait = opened[0] + WINDOW - now
                return (
                    f"too many payments opened from this {'MCP session' if key[0] == 'session' else 'address'}: at "
                    f"most {self.limits[key[0]]} a minute; try again in {max(1, round(wait))} s"
                )
        for key in keys:
            self._opened[key].append(now)
        return None


def _client(ctx: Context | None) -> list[tuple[str, str]]:
    """("session", MCP session id) and ("address", remote address) of an HTTP call; nothing over stdio."""
    try:
        request = ctx.request_context.request if ctx is not None else None
    except ValueError:  # no request in progress
        return []
    if request is None or not hasattr(request, "headers"):
        return []
    client = getattr(request, "client", None)
    return [("session", request.headers.get("mcp-session-id", "")), ("address", client.host if client else "")]
