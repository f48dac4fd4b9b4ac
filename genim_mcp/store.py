"""SQLite under the state directory: payments (orders), the requests and images the follower saw, its cursor.

Everything a restarted server needs to answer `get_image` and the pay page lives here. One connection, shared by
the follower thread, the local wallet thread and the event loop, behind a lock; every call is a few local rows.
Wei amounts are stored as text (they exceed SQLite's 64-bit integers).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from genimnft.contract import ImageSetEvent, RequestEvent

SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, tier INTEGER NOT NULL, aspect INTEGER NOT NULL, style TEXT NOT NULL, prompt TEXT NOT NULL,
    price_wei TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL, created_block INTEGER NOT NULL,
    state TEXT NOT NULL, token_id INTEGER UNIQUE, mint_tx TEXT, failure TEXT, payer TEXT, day TEXT
);
CREATE TABLE IF NOT EXISTS tokens (
    token_id INTEGER PRIMARY KEY, tier INTEGER NOT NULL, aspect INTEGER NOT NULL, prompt TEXT NOT NULL,
    requester TEXT NOT NULL, escrow_wei TEXT NOT NULL, deadline INTEGER NOT NULL, block_number INTEGER NOT NULL,
    mint_tx TEXT NOT NULL, digest BLOB, set_image_tx TEXT, refund_tx TEXT
);
CREATE TABLE IF NOT EXISTS cursor (id INTEGER PRIMARY KEY CHECK (id = 0), block INTEGER, timestamp INTEGER);
"""


class CapExceeded(RuntimeError):
    """A local-mode spending cap would be passed; nothing was sent."""


@dataclass(frozen=True)
class Order:
    """One payment link: the exact terms of one tool call, paid by one mint, used once."""

    id: str
    tier: int
    aspect: int
    style: str
    prompt: str
    price_wei: int
    created_at: float
    expires_at: float
    created_block: int
    state: str  # awaiting, paid, failed, expired
    token_id: int | None
    mint_tx: str | None
    failure: str | None
    payer: str | None


@dataclass(frozen=True)
class TokenRecord:
    token_id: int
    tier: int
    aspect: int
    prompt: str
    requester: str
    escrow_wei: int
    deadline: int
    block_number: int
    mint_tx: str
    digest: bytes | None
    set_image_tx: str | None
    refund_tx: str | None


@dataclass(frozen=True)
class SeenRequest:
    event: RequestEvent
    tag: bytes | None  # the payment id appended to its calldata, if any


def hex0x(value: str) -> str:
    """Transaction hashes as wallets and explorers write them."""
    return "0x" + value.removeprefix("0x")


def utc_day(at: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(at))


class Store:
    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(state_dir / "front.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- orders ---------------------------------------------------------------------------------------------

    def create_order(self, order: Order, max_per_call: int = 0, max_per_day: int = 0) -> Order:
        """Records a new order; with caps (local mode), refuses one that would pass them."""
        with self._transaction() as db:
            if max_per_call and order.price_wei > max_per_call:
                raise CapExceeded(f"price {order.price_wei} wei is over the per-call cap of {max_per_call} wei")
            if max_per_day:
                spent = self._spent(db, order.payer, utc_day(order.created_at))
                if spent + order.price_wei > max_per_day:
                    raise CapExceeded(
                        f"price {order.price_wei} wei would bring today's spending (UTC) to {spent + order.price_wei}"
                        f" wei, over the per-day cap of {max_per_day} wei ({spent} wei spent or reserved today)"
                    )
            db.execute(
                "INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    order.id,
                    order.tier,
                    order.aspect,
                    order.style,
                    order.prompt,
                    str(order.price_wei),
                    order.created_at,
                    order.expires_at,
                    order.created_block,
                    order.state,
                    order.token_id,
                    order.mint_tx,
                    order.failure,
                    order.payer,
                    utc_day(order.created_at),
                ),
            )
        return order

    @staticmethod
    def _spent(db: sqlite3.Connection, payer: str | None, day: str) -> int:
        rows = db.execute(
            "SELECT price_wei FROM orders WHERE payer IS ? AND day = ? AND (state IN ('awaiting', 'paid')"
            " OR (state = 'expired' AND mint_tx IS NOT NULL))",
            (payer, day),
        )
        return sum(int(price) for (price,) in rows)

    def order(self, order_id: str) -> Order | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
        return _order(row) if row else None

    def order_of_token(self, token_id: int) -> Order | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM orders WHERE token_id = ?", (token_id,)).fetchone()
        return _order(row) if row else None

    def mint_sent(self, order_id: str, tx_hash: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE orders SET mint_tx = ? WHERE id = ?", (tx_hash, order_id))

    def fail(self, order_id: str, reason: str) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE orders SET state = 'failed', failure = ? WHERE id = ? AND state = 'awaiting'",
                (reason, order_id),
            )

    def payment_status(self, order_id: str, now: float) -> str:
        """paymcp's vocabulary: paid, pending, expired, failed."""
        with self._transaction() as db:
            db.execute(
                "UPDATE orders SET state = 'expired' WHERE id = ? AND state = 'awaiting' AND expires_at < ?",
                (order_id, now),
            )
            row = db.execute("SELECT state FROM orders WHERE id = ?", (order_id,)).fetchone()
        if row is None:
            return "failed"
        return {"awaiting": "pending"}.get(row[0], row[0])

    def open_orders(self, now: float) -> int:
        with self._lock:
            return self._db.execute(
                "SELECT count(*) FROM orders WHERE state = 'awaiting' AND expires_at >= ?", (now,)
            ).fetchone()[0]

    # -- what the follower saw ------------------------------------------------------------------------------

    def record_scan(
        self,
        requests: list[SeenRequest],
        images: list[ImageSetEvent],
        refunds: dict[int, str],
        block: int,
        timestamp: int,
        now: float,
    ) -> None:
        """One scanned block range, in one transaction: tokens, payments they settle, images, refunds, cursor."""
        with self._transaction() as db:
            for seen in requests:
                event = seen.event
                db.execute(
                    # A re-scan (reorg window) keeps what later events added: image and refund.
                    "INSERT INTO tokens (token_id, tier, aspect, prompt, requester, escrow_wei, deadline, block_number,"
                    " mint_tx) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (token_id) DO UPDATE SET"
                    " block_number = excluded.block_number, mint_tx = excluded.mint_tx",
                    (
                        event.token_id,
                        event.tier,
                        event.aspect,
                        event.prompt,
                        event.requester,
                        str(event.escrow),
                        event.deadline,
                        event.block_number,
                        hex0x(event.mint_tx),
                    ),
                )
                _settle(db, seen, now)
            for image in images:
                db.execute(
                    "UPDATE tokens SET digest = ?, set_image_tx = ? WHERE token_id = ?",
                    (image.metadata_digest, hex0x(image.tx_hash), image.token_id),
                )
            for token_id, tx_hash in refunds.items():
                db.execute("UPDATE tokens SET refund_tx = ? WHERE token_id = ?", (tx_hash, token_id))
            db.execute("INSERT OR REPLACE INTO cursor VALUES (0, ?, ?)", (block, timestamp))

    def cursor(self) -> tuple[int, int] | None:
        with self._lock:
            row = self._db.execute("SELECT block, timestamp FROM cursor").fetchone()
        return (row[0], row[1]) if row else None

    def token(self, token_id: int) -> TokenRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM tokens WHERE token_id = ?", (token_id,)).fetchone()
        if row is None:
            return None
        token_id, tier, aspect, prompt, requester, escrow, deadline, block, mint_tx, digest, set_tx, refund_tx = row
        return TokenRecord(
            token_id,
            tier,
            aspect,
            prompt,
            requester,
            int(escrow),
            deadline,
            block,
            mint_tx,
            bytes(digest) if digest is not None else None,
            set_tx,
            refund_tx,
        )


def _order(row: tuple) -> Order:
    return Order(*row[:5], int(row[5]), *row[6:14])  # type: ignore[arg-type]


def _settle(db: sqlite3.Connection, seen: SeenRequest, now: float) -> None:
    """Ties a confirmed mint to the payment it is for: by its tag, else (untagged, e.g. a phone wallet) to the
    oldest open payment of exactly its terms created before its block. A token pays at most one payment."""
    event = seen.event
    if db.execute("SELECT 1 FROM orders WHERE token_id = ?", (event.token_id,)).fetchone():
        return  # re-scanned after a restart
    if seen.tag is not None:
        row = db.execute("SELECT * FROM orders WHERE id = ?", (seen.tag.hex(),)).fetchone()
        if row is None or row[9] != "awaiting":
            return
        order = _order(row)
        mismatch = _mismatch(order, event)
        if mismatch:
            db.execute(
                "UPDATE orders SET state = 'failed', failure = ?, mint_tx = ? WHERE id = ?",
                (
                    f"the mint in tx {hex0x(event.mint_tx)} (token {event.token_id}) {mismatch}; it does not pay for "
                    f"this call (that token is still generated: get_image({event.token_id}))",
                    hex0x(event.mint_tx),
                    order.id,
                ),
            )
            return
        match_id = order.id
    else:
        row = db.execute(
            "SELECT id FROM orders WHERE state = 'awaiting' AND expires_at >= ? AND tier = ? AND aspect = ?"
            " AND prompt = ? AND created_block < ? ORDER BY created_at LIMIT 1",
            (now, event.tier, event.aspect, event.prompt, event.block_number),
        ).fetchone()
        if row is None:
            return
        match_id = row[0]
    db.execute(
        "UPDATE orders SET state = 'paid', token_id = ?, mint_tx = ? WHERE id = ?",
        (event.token_id, hex0x(event.mint_tx), match_id),
    )


def _mismatch(order: Order, event: RequestEvent) -> str | None:
    if event.tier != order.tier:
        return f"is for tier {event.tier}, this call is tier {order.tier}"
    if event.aspect != order.aspect:
        return f"is for aspect ratio #{event.aspect}, this call is #{order.aspect}"
    if event.prompt != order.prompt:
        return "is for another prompt"
    return None
