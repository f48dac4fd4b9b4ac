"""The server's record of every x402 payment it accepted, in the front's SQLite file: what binds an authorization
to one call, and what makes a replay get nothing.

A payment is keyed by its authorization (payer, EIP-3009 nonce). The first call that presents it, verified,
claims it for that call's terms; from then on no other terms can use it, and the same terms can use it again
only if it was refused before any transaction was sent (`unused`). The transaction is recorded (hash and signed
bytes) before it is broadcast, so a restart never forgets a payment that may be on its way.

    claimed -> unused                 (refused before sending: simulation failed, relayer without gas money;
                                       or sent, but the node refused the transaction)
    claimed -> sent -> settled        (mined: the token is the payer's, the USDC in its escrow)
                    -> reverted       (mined and reverted: the authorization was not used by it)
                    -> expired        (never mined before `validBefore`: the authorization can no longer be used)
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS x402_payments (
    payer TEXT NOT NULL, nonce TEXT NOT NULL, terms TEXT NOT NULL, tier INTEGER NOT NULL, amount TEXT NOT NULL,
    valid_before INTEGER NOT NULL, state TEXT NOT NULL, tx TEXT, raw_tx TEXT, token_id INTEGER, reason TEXT,
    created_at REAL NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (payer, nonce)
);
"""


@dataclass(frozen=True)
class Payment:
    payer: str
    nonce: str  # 0x-hex, 32 bytes
    terms: str  # UsdcRail.terms_digest of the call it was claimed for
    tier: int
    amount: int
    valid_before: int
    state: str
    tx: str | None
    raw_tx: str | None
    token_id: int | None
    reason: str | None


class AlreadyPresented(RuntimeError):
    """This authorization was presented before; the payment on record says what became of it."""

    def __init__(self, payment: Payment, same_terms: bool) -> None:
        super().__init__(describe(payment, same_terms))
        self.payment = payment
        self.same_terms = same_terms


def describe(payment: Payment, same_terms: bool = True) -> str:
    """What became of a payment, for the agent that presents it again: never anything a second time."""
    if not same_terms:
        return (
            "this payment was made for another call (other tier, aspect ratio or prompt) and is bound to it; it "
            "cannot pay for this one, and nothing was charged for this call"
        )
    if payment.state == "settled":
        return (
            f"this payment was used already: it paid for token {payment.token_id} in tx {payment.tx}. It is not "
            f"charged or delivered a second time; get_image({payment.token_id}) returns that image"
        )
    if payment.state == "sent":
        return (
            f"this payment is being settled by an earlier call (tx {payment.tx}); it is not used twice. If that "
            "transaction is mined, its token is yours (your address is its holder)"
        )
    if payment.state == "claimed":
        return "this payment is being settled by another call right now; it is not used twice"
    return (
        f"this payment was presented before and ended {payment.state} ({payment.reason}); the server never submits "
        "it again, and it did not charge you. Sign a new payment to try again"
    )


class Ledger:
    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        # Its own connection to the front's file (WAL): the store's lock is not held across these rows.
        self._db = sqlite3.connect(state_dir / "front.sqlite3", check_same_thread=False, isolation_level=None,
                                   timeout=30)  # fmt: skip
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        # A claim that never reached `sent` was never broadcast: after a restart it is simply unused.
        with self._lock:
            self._db.execute(
                "UPDATE x402_payments SET state = 'unused', reason = 'the server restarted before sending it'"
                " WHERE state = 'claimed'"
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def claim(self, payer: str, nonce: str, terms: str, tier: int, amount: int, valid_before: int) -> Payment:
        """Binds the authorization (payer, nonce) to this call's terms; AlreadyPresented if it was presented
        before, unless it was refused unused for these very terms."""
        payer, now = payer.lower(), time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT * FROM x402_payments WHERE payer = ? AND nonce = ?", (payer, nonce)
                ).fetchone()
                if row is None:
                    self._db.execute(
                        "INSERT INTO x402_payments VALUES (?,?,?,?,?,?,'claimed',NULL,NULL,NULL,NULL,?,?)",
                        (payer, nonce, terms, tier, str(amount), valid_before, now, now),
                    )
                else:
                    known = _payment(row)
                    if known.terms != terms or known.state != "unused":
                        raise AlreadyPresented(known, known.terms == terms)
                    self._db.execute(
                        "UPDATE x402_payments SET state = 'claimed', reason = NULL, updated_at = ?"
                        " WHERE payer = ? AND nonce = ?",
                        (now, payer, nonce),
                    )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        payment = self.get(payer, nonce)
        assert payment is not None
        return payment

    def get(self, payer: str, nonce: str) -> Payment | None:
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM x402_payments WHERE payer = ? AND nonce = ?", (payer.lower(), nonce)
            ).fetchone()
        return _payment(row) if row else None

    def unused(self, payment: Payment, reason: str) -> None:
        """Nothing was broadcast that can still be mined (refused before sending, or the node refused it)."""
        self._set(payment, ("claimed", "sent"), "state = 'unused', reason = ?", (reason,))

    def sending(self, payment: Payment, tx: str, raw_tx: str) -> None:
        """Recorded before the transaction is broadcast (and again for a replacement with a new relayer nonce)."""
        self._set(payment, ("claimed", "sent"), "state = 'sent', tx = ?, raw_tx = ?", (tx, raw_tx))

    def settled(self, payment: Payment, tx: str, token_id: int) -> None:
        self._set(payment, ("sent",), "state = 'settled', tx = ?, token_id = ?, raw_tx = NULL", (tx, token_id))

    def reverted(self, payment: Payment, tx: str, reason: str) -> None:
        self._set(payment, ("sent",), "state = 'reverted', tx = ?, reason = ?", (tx, reason))

    def expired(self, payment: Payment, reason: str) -> None:
        self._set(payment, ("sent",), "state = 'expired', reason = ?", (reason,))

    def spent(self, payer: str, since: float) -> int:
        """USDC units `payer` paid or may have paid by payments claimed since `since`: settled, and those whose
        outcome is not known yet (claimed, sent), as local mode's caps count them; not those that charged nothing."""
        with self._lock:
            rows = self._db.execute(
                "SELECT amount FROM x402_payments WHERE payer = ? AND created_at >= ?"
                " AND state IN ('claimed', 'sent', 'settled')",
                (payer.lower(), since),
            ).fetchall()
        return sum(int(amount) for (amount,) in rows)

    def in_flight(self) -> list[Payment]:
        """Payments whose transaction was sent and whose outcome is not recorded (after a restart)."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM x402_payments WHERE state = 'sent'").fetchall()
        return [_payment(row) for row in rows]

    def _set(self, payment: Payment, states: tuple[str, ...], assignments: str, values: tuple) -> None:
        """Moves `payment` on, only from one of `states` (a late writer never overwrites a later outcome)."""
        marks = ",".join("?" * len(states))
        with self._lock:
            self._db.execute(
                f"UPDATE x402_payments SET {assignments}, updated_at = ? WHERE payer = ? AND nonce = ?"
                f" AND state IN ({marks})",
                (*values, time.time(), payment.payer, payment.nonce, *states),
            )


def _payment(row: tuple) -> Payment:
    payer, nonce, terms, tier, amount, valid_before, state, tx, raw_tx, token_id, reason = row[:11]
    return Payment(payer, nonce, terms, tier, int(amount), valid_before, state, tx, raw_tx, token_id, reason)
