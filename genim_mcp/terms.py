"""What one paid call buys: tier, aspect ratio and the prompt that goes on-chain, checked before any payment.

The style is composed into the on-chain prompt in one way only: `"{prompt}, {style} style"` (as in PayMCP's
paid image generator). The contract's bounds apply to that composed prompt: 1..1000 bytes of UTF-8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from genimnft.aspects import ASPECT_LABELS, Aspect

MAX_PROMPT_BYTES = 1000  # the contract's MAX_PROMPT_BYTES()
TIER_NAMES = ("basic", "premium", "ultra")
STYLES = ("photorealistic", "artistic", "cartoon", "abstract")
AspectLabel = Literal["1:1", "16:9", "9:16", "4:3"]
Style = Literal["photorealistic", "artistic", "cartoon", "abstract"]
assert AspectLabel.__args__ == ASPECT_LABELS, "the tool schema lists the contract's aspect ratios"


class TermsError(ValueError):
    """The call's arguments cannot become a mint; nothing was paid."""


@dataclass(frozen=True)
class ImageTerms:
    tier: int
    aspect: Aspect
    style: str
    prompt: str  # as it goes on-chain, style included

    @property
    def tier_name(self) -> str:
        return TIER_NAMES[self.tier]


def compose_prompt(prompt: str, style: str) -> str:
    return f"{prompt}, {style} style"


def image_terms(tier: int, prompt: str, aspect_ratio: str, style: str) -> ImageTerms:
    """The terms of one call, or TermsError saying what is wrong."""
    if tier not in range(len(TIER_NAMES)):
        raise TermsError(f"unknown tier {tier}")
    if style not in STYLES:
        raise TermsError(f"unknown style {style!r}; use one of {', '.join(STYLES)}")
    try:
        aspect = Aspect.parse(aspect_ratio)
    except ValueError as exc:
        raise TermsError(str(exc)) from None
    if not prompt.strip():
        raise TermsError("the prompt is empty")
    try:
        prompt.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise TermsError(
            f"the prompt is not valid Unicode text (lone surrogate {prompt[exc.start]!r} at position {exc.start})"
        ) from None
    composed = compose_prompt(prompt, style)
    size = len(composed.encode("utf-8"))
    if size > MAX_PROMPT_BYTES:
        suffix = len(composed.encode("utf-8")) - len(prompt.encode("utf-8"))
        raise TermsError(
            f"the prompt is {size} bytes of UTF-8 with the style ({suffix} bytes for ', {style} style'); "
            f"the contract takes at most {MAX_PROMPT_BYTES}"
        )
    return ImageTerms(tier=tier, aspect=aspect, style=style, prompt=composed)


class _OrderLike(Protocol):
    tier: int
    aspect: int
    style: str
    prompt: str


def order_terms(order: _OrderLike) -> ImageTerms:
    """The terms a recorded payment was opened for (already checked then)."""
    return ImageTerms(order.tier, Aspect(order.aspect), order.style, order.prompt)
