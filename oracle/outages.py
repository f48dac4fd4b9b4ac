"""Which service the daemon cannot reach now (IPFS node, RPC, broker), and why: `/health` reports it as degraded,
and `genim-oracle status` shows it under `notices`. A stage that fails records the service its error names; the
same stage passing again clears it (another stage passing proves nothing about a service it does not use)."""

from __future__ import annotations

import time
from collections.abc import Callable

from requests.exceptions import RequestException
from web3.exceptions import Web3Exception

from genimnft.ipfs import IpfsError

BROKER_MODULES = ("kombu", "amqp", "celery", "oracle.wire")
SERVICES = ("ipfs", "rpc", "broker", "other")

# Records (or with None clears) the notice of one service: the journal's set_notice.
SetNotice = Callable[[str, dict | None], None]


def service_of(exc: BaseException) -> str:
    """The service an error of a stage names: ipfs, rpc, broker, or other (a disk, a value out of range)."""
    if isinstance(exc, IpfsError):
        return "ipfs"
    if isinstance(exc, (Web3Exception, RequestException)):
        return "rpc"
    if type(exc).__module__.startswith(BROKER_MODULES):
        return "broker"
    return "other"


class Outages:
    def __init__(self, set_notice: SetNotice) -> None:
        self._set_notice = set_notice
        self._by_stage: dict[str, tuple[str, str, float]] = {}  # stage -> (service, reason, since)
        self._published: dict[str, dict | None] = {}  # what the journal holds, so it is written on a change only
        for service in SERVICES:  # a notice left by the last run: this one finds out afresh
            set_notice(f"unreachable_{service}", None)

    def failed(self, stage: str, exc: BaseException) -> None:
        service = service_of(exc)
        reason = (str(exc).strip() or exc.__class__.__name__).splitlines()[0]
        since = self._by_stage.get(stage, (service, reason, time.time()))[2]
        self._by_stage[stage] = (service, reason, since)
        self._publish(service)

    def passed(self, stage: str) -> None:
        if (entry := self._by_stage.pop(stage, None)) is not None:
            self._publish(entry[0])

    def current(self) -> dict[str, dict]:
        """service -> {"reason", "since", "stages"} for every service some stage cannot reach now."""
        found: dict[str, dict] = {}
        for stage, (service, reason, since) in sorted(self._by_stage.items()):
            entry = found.setdefault(service, {"reason": reason, "since": round(since), "stages": []})
            entry["stages"].append(stage)
            entry["since"] = min(entry["since"], round(since))
        return found

    def _publish(self, service: str) -> None:
        notice = self.current().get(service)
        if self._published.get(service) != notice:
            self._set_notice(f"unreachable_{service}", notice)
            self._published[service] = notice
