"""Fault-injection points for the reliability suite (tests/faults/).

With GENIM_CRASH_AT=<point> in its environment the daemon kills itself with SIGKILL, exactly like
`kill -9`, the first time it reaches that point; a marker file in the state directory keeps the restarted
daemon from crashing again. Without the variable every call is a no-op. Points: seen, generating,
generated, image_pinned, metadata_pinned, submitted (after the broadcast, before the receipt).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

ENV = "GENIM_CRASH_AT"


def crash_point(name: str, state_dir: Path) -> None:
    if os.environ.get(ENV) != name:
        return
    marker = state_dir / f"crashed-at-{name}"
    if marker.exists():
        return
    marker.write_text(str(os.getpid()))
    os.kill(os.getpid(), signal.SIGKILL)
