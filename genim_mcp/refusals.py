"""Refusals in plain words: arguments FastMCP's schema check rejects (pydantic's text, with its URLs) become one
line per argument, and every refusal ends with the same "nothing was paid"."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mcp.server.fastmcp import FastMCP
from mcp.server.fastmcp.exceptions import ToolError
from mcp.types import ContentBlock
from pydantic import ValidationError

NOTHING_PAID = "nothing was paid"


class PlainRefusals(FastMCP):
    """FastMCP whose tool calls refuse bad arguments in words a buyer reads."""

    async def call_tool(self, name: str, arguments: dict[str, Any]) -> Sequence[ContentBlock] | dict[str, Any]:
        try:
            return await super().call_tool(name, arguments)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                raise ToolError(argument_refusal(name, exc.__cause__)) from None
            if str(exc).startswith("Unknown tool"):
                raise ToolError(f"there is no tool {name!r} here; {NOTHING_PAID}") from None
            raise


def argument_refusal(tool: str, error: ValidationError) -> str:
    """`aspect_ratio` must be one of '1:1', ... ; nothing was paid."""
    problems = []
    for detail in error.errors(include_url=False):
        field = ".".join(str(part) for part in detail["loc"]) or "the arguments"
        problems.append(f"{field} {_what(detail)}")
    return f"{tool}: {'; '.join(problems)}; {NOTHING_PAID}"


def _what(detail: Any) -> str:
    kind, context = detail["type"], detail.get("ctx") or {}
    if kind == "missing":
        return "is missing"
    if kind == "literal_error":
        return f"must be one of {context.get('expected', 'the listed values')}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return "must be a whole number"
    if kind in ("string_type", "string_unicode"):
        return "must be text"
    if kind == "unexpected_keyword_argument":
        return "is not an argument of this tool"
    return f"is not accepted ({str(detail['msg']).rstrip('.').lower()})"
