"""Aspect ratios a buyer chooses at mint, and the image size each gives at a tier's pixel budget.

The contract binds the choice as a number (0..3) in `ImageRequested`; the oracle generates at the tier's
pixel budget (its configured width x height) in that ratio, each side a multiple of 64, so 1:1 keeps the
configured size exactly (512x512 stays 512x512).
"""

from __future__ import annotations

import math
from enum import IntEnum

SIZE_STEP = 64


class Aspect(IntEnum):
    SQUARE = 0  # 1:1
    LANDSCAPE = 1  # 16:9
    PORTRAIT = 2  # 9:16
    CLASSIC = 3  # 4:3

    @property
    def ratio(self) -> tuple[int, int]:
        return _RATIOS[self]

    @property
    def label(self) -> str:
        width, height = self.ratio
        return f"{width}:{height}"

    @classmethod
    def parse(cls, value: str | int) -> Aspect:
        """`"16:9"` or `1`; raises ValueError naming the accepted values."""
        for aspect in cls:
            if value in (aspect.label, int(aspect)) and not isinstance(value, bool):
                return aspect
        raise ValueError(f"unknown aspect ratio {value!r}; use one of {', '.join(a.label for a in cls)}")


_RATIOS = {Aspect.SQUARE: (1, 1), Aspect.LANDSCAPE: (16, 9), Aspect.PORTRAIT: (9, 16), Aspect.CLASSIC: (4, 3)}
ASPECT_LABELS = tuple(aspect.label for aspect in Aspect)


def image_size(width: int, height: int, aspect: Aspect | int, step: int = SIZE_STEP) -> tuple[int, int]:
    """The size for `aspect` whose area is closest to `width` x `height`, sides multiples of `step`.

    A configured size that already has the ratio is kept as it is (so 1:1 of 512x512 is 512x512).

    Among the sizes within 15% of the budget's area, the one closest to the ratio wins (ties: closest area);
    a budget too small to have any takes the closest area, then the closest ratio.
    """
    aspect = Aspect(aspect)
    ratio_w, ratio_h = aspect.ratio
    if width * ratio_h == height * ratio_w:
        return width, height  # the configured size already has this shape: keep it exactly
    ratio, area = ratio_w / ratio_h, width * height
    longest = 2 * math.sqrt(area * max(ratio, 1 / ratio))
    sides = range(step, int(longest) // step * step + step, step)

    def rank(size: tuple[int, int]) -> tuple[bool, float, float, int]:
        w, h = size
        area_error, ratio_error = abs(math.log(w * h / area)), abs(math.log(w / h / ratio))
        within = area_error <= math.log(1.15)
        return (not within, ratio_error if within else area_error, area_error if within else ratio_error, w)

    return min(((w, h) for w in sides for h in sides), key=rank)
