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
from genimnft.settings import ConfigError

SCHEMA_VERSION = 3  # 2: dollar prices, the oracle epoch each mint names, escrow per asset; 3: value offsets, notices
GWEI = 10**9
SCHEMA = """
CREATE TABLE IF NOT EXISTS orders (
    id TEXT PRIMARY KEY, tier INTEGER NOT NULL, aspect INTEGER NOT NULL, style TEXT NOT NULL, prompt TEXT NOT NULL,
    price_usd INTEGER NOT NULL, max_wei TEXT NOT NULL, oracle_epoch INTEGER NOT NULL, created_at REAL NOT NULL,
    expires_at REAL NOT NULL, created_block INTEGER NOT NULL, state TEXT NOT NULL, token_id INTEGER UNIQUE,
    mint_tx TEXT, failure TEXT, renewable INTEGER NOT NULL DEFAULT 0, renewed_by TEXT, payer TEXT, day TEXT,
    value_offset INTEGER NOT NULL DEFAULT 0, notice TEXT, delivered_at REAL
);
CREATE INDEX IF NOT EXISTS orders_by_offset ON orders (value_offset);
CREATE TABLE IF NOT EXISTS tokens (
    token_id INTEGER PRIMARY KEY, tier INTEGER NOT NULL, aspect INTEGER NOT NULL, asset INTEGER NOT NULL,
    prompt TEXT NOT NULL, requester TEXT NOT NULL, escrow TEXT NOT NULL, deadline INTEGER NOT NULL,
    block_number INTEGER NOT NULL, mint_tx TEXT NOT NULL, digest BLOB, set_image_tx TEXT, refund_tx TEXT
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
    price_usd: int  # price(tier) when opened: US dollars, 6 decimals
    max_wei: int  # what the mint sends at most when opened (priceInWei plus the margin); the caps count it
    oracle_epoch: int  # the oracle set its mint names
    created_at: float
    expires_at: float
    created_block: int
    state: str  # awaiting, unknown (its mint was broadcast but the node's answer was lost), paid, failed, expired
    token_id: int | None
    mint_tx: str | None
    failure: str | None
    renewable: bool  # failed, but paying again at fresh terms can succeed (the oracle set or the rate moved)
    renewed_by: str | None  # the order opened in its place, for the same call
    payer: str | None
    # Wei below one gwei added to the EIP-681 link's value: it names this payment in a mint that carries no tag
    # (prices are whole gwei, so it comes back as the mint's excess); 1..GWEI-1, unique among unsettled payments.
    value_offset: int = 0
    notice: str | None = None  # a mint of exactly these terms that carried no proof of this payment arrived


@dataclass(frozen=True)
class TokenRecord:
    token_id: int
    tier: int
    aspect: int
    asset: int  # 0 ETH, 1 USDC
    prompt: str
    requester: str
    escrow: int  # wei for ETH, USDC units
    deadline: int
    block_number: int
    mint_tx: str
    digest: bytes | None
    set_image_tx: str | None
    refund_tx: str | None


@dataclass(frozen=True)
class Outdated:
    """Open payments whose mint names an epoch below `epoch` cannot be paid any more, for `reason`."""

    epoch: int
    reason: str


@dataclass(frozen=True)
class SeenRequest:
    event: RequestEvent
    tag: bytes | None  # the payment id appended to its calldata, if any
    value: int | None = None  # the mint transaction's msg.value (ETH mints)


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
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        tables = self._db.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
        if tables and version != SCHEMA_VERSION:
            self._db.close()
            raise ConfigError(
                f"{state_dir} holds the state of an older genim-mcp (schema {version}, this one writes "
                f"{SCHEMA_VERSION}); point state_dir at a new directory"
            )
        self._db.executescript(SCHEMA)
        self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
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

    def create_order(
        self, order: Order, max_per_call: int = 0, max_per_day: int = 0, renews: str | None = None
    ) -> Order:
        """Records a new order (in place of the failed order `renews`, for the same call); with caps (local mode),
        refuses one whose mint would send more than they allow."""
        with self._transaction() as db:
            if max_per_call and order.max_wei > max_per_call:
                raise CapExceeded(
                    f"the mint would send up to {order.max_wei} wei (the price plus the rate margin), over the "
                    f"per-call cap of {max_per_call} wei"
                )
            if max_per_day:
                spent = self._spent(db, order.payer, utc_day(order.created_at))
                if spent + order.max_wei > max_per_day:
                    raise CapExceeded(
                        f"the mint would send up to {order.max_wei} wei, bringing today's spending (UTC) to "
                        f"{spent + order.max_wei} wei, over the per-day cap of {max_per_day} wei ({spent} wei spent "
                        "or reserved today)"
                    )
            db.execute(
                "INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,NULL)",
                (
                    order.id,
                    order.tier,
                    order.aspect,
                    order.style,
                    order.prompt,
                    order.price_usd,
                    str(order.max_wei),
                    order.oracle_epoch,
                    order.created_at,
                    order.expires_at,
                    order.created_block,
                    order.state,
                    order.token_id,
                    order.mint_tx,
                    order.failure,
                    int(order.renewable),
                    order.renewed_by,
                    order.payer,
                    utc_day(order.created_at),
                    order.value_offset,
                    order.notice,
                ),
            )
            if renews is not None:
                db.execute("UPDATE orders SET renewed_by = ? WHERE id = ?", (order.id, renews))
        return order

    @staticmethod
    def _spent(db: sqlite3.Connection, payer: str | None, day: str) -> int:
        rows = db.execute(
            "SELECT max_wei FROM orders WHERE payer IS ? AND day = ? AND (state IN ('awaiting', 'paid')"
            " OR (state = 'expired' AND mint_tx IS NOT NULL) OR state = 'unknown')",
            (payer, day),
        )
        return sum(int(price) for (price,) in rows)

    def order(self, order_id: str) -> Order | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM orders WHERE id = ?", (order_id,)).fetchone()
        return _order(row) if row else None

    def delivered(self, token_id: int, now: float) -> None:
        """The token's image reached a buyer (its call, or get_image later)."""
        with self._transaction() as db:
            db.execute(
                "UPDATE orders SET delivered_at = ? WHERE token_id = ? AND delivered_at IS NULL", (now, token_id)
            )

    def undelivered(self, payer: str) -> list[tuple[str, int]]:
        """(order id, token id) of what `payer` paid for through this front whose image no answer carried yet."""
        with self._lock:
            return self._db.execute(
                "SELECT id, token_id FROM orders WHERE payer = ? AND token_id IS NOT NULL AND delivered_at IS NULL"
                " ORDER BY token_id",
                (payer,),
            ).fetchall()

    def tokens_of(self, requester: str) -> list[TokenRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM tokens WHERE lower(requester) = lower(?) ORDER BY token_id", (requester,)
            ).fetchall()
        return [_token(row) for row in rows]

    def token_of_mint(self, tx_hash: str) -> TokenRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM tokens WHERE mint_tx = ?", (hex0x(tx_hash.lower()),)).fetchone()
        return _token(row) if row else None

    def order_of_token(self, token_id: int) -> Order | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM orders WHERE token_id = ?", (token_id,)).fetchone()
        return _order(row) if row else None

    def mint_sent(self, order_id: str, tx_hash: str) -> None:
        with self._transaction() as db:
            db.execute("UPDATE orders SET mint_tx = ? WHERE id = ?", (tx_hash, order_id))

    def report_mint(self, order_id: str, tx_hash: str) -> bool:
        """The mint a wallet says it sent for an open order (the pay page reports it); the follower checks it."""
        with self._transaction() as db:
            cursor = db.execute(
                "UPDATE orders SET mint_tx = ? WHERE id = ? AND state = 'awaiting' AND mint_tx IS NULL",
                (hex0x(tx_hash), order_id),
            )
        return cursor.rowcount == 1

    def forget_mint(self, order_id: str, tx_hash: str) -> None:
        """A reported transaction that is not a mint for this order."""
        with self._transaction() as db:
            db.execute("UPDATE orders SET mint_tx = NULL WHERE id = ? AND mint_tx = ?", (order_id, tx_hash))

    def sent_mints(self) -> list[tuple[str, str]]:
        """(order id, mint tx) of open orders whose mint was sent but has not settled them."""
        with self._lock:
            return self._db.execute(
                "SELECT id, mint_tx FROM orders WHERE state = 'awaiting' AND mint_tx IS NOT NULL"
            ).fetchall()

    def fail(self, order_id: str, reason: str, renewable: bool = False) -> None:
        with self._transaction() as db:
            db.execute(
                "UPDATE orders SET state = 'failed', failure = ?, renewable = ? WHERE id = ?"
                " AND state IN ('awaiting', 'unknown')",
                (reason, int(renewable), order_id),
            )

    def send_unknown(self, order_id: str, tx_hash: str) -> None:
        """Its mint (`tx_hash`, known before the broadcast) was sent, but whether the node took it is unknown: it
        counts as spent, never expires, and is resolved by the hash and the account's nonce."""
        with self._transaction() as db:
            db.execute(
                "UPDATE orders SET state = 'unknown', mint_tx = ? WHERE id = ? AND state = 'awaiting'",
                (tx_hash, order_id),
            )

    def send_known(self, order_id: str) -> None:
        """The node has the mint of an `unknown` payment: it settles through its event like any other."""
        with self._transaction() as db:
            db.execute("UPDATE orders SET state = 'awaiting' WHERE id = ? AND state = 'unknown'", (order_id,))

    def payment_status(self, order_id: str, now: float | None = None) -> str:
        """paymcp's vocabulary: paid, pending, expired, failed. A payment expires only once the follower has read
        every block mined before its link ran out (`expire_due`), so "expired" means no mint of it was in them."""
        with self._lock:
            row = self._db.execute("SELECT state FROM orders WHERE id = ?", (order_id,)).fetchone()
        if row is None:
            return "failed"
        return {"awaiting": "pending", "unknown": "pending"}.get(row[0], row[0])

    def expire_due(self, seen_until: float) -> None:
        """Open payments whose link ran out before `seen_until`: the follower has scanned every block that was
        mined by then, and none of them held a mint that pays them."""
        with self._transaction() as db:
            db.execute("UPDATE orders SET state = 'expired' WHERE state = 'awaiting' AND expires_at < ?", (seen_until,))

    def purge(self, expired_before: float) -> int:
        """Deletes payments that ended unpaid (expired or failed, no token) and whose link ran out before
        `expired_before`; the rows of paid payments stay (they tie a token to its call)."""
        with self._transaction() as db:
            cursor = db.execute(
                "DELETE FROM orders WHERE state IN ('expired', 'failed') AND token_id IS NULL AND expires_at < ?",
                (expired_before,),
            )
        return cursor.rowcount

    def offset_in_use(self, offset: int) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM orders WHERE value_offset = ? AND token_id IS NULL AND state IN ('awaiting', 'expired')",
                (offset,),
            ).fetchone()
        return row is not None

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
        outdated: Outdated | None = None,
    ) -> None:
        """One scanned block range, in one transaction: tokens, payments they settle, images, refunds, payments
        an oracle authorisation outdated (after the range's mints settled), cursor."""
        with self._transaction() as db:
            for seen in requests:
                event = seen.event
                db.execute(
                    # A re-scan (reorg window) keeps what later events added: image and refund.
                    "INSERT INTO tokens (token_id, tier, aspect, asset, prompt, requester, escrow, deadline,"
                    " block_number, mint_tx) VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT (token_id) DO UPDATE SET"
                    " block_number = excluded.block_number, mint_tx = excluded.mint_tx",
                    (
                        event.token_id,
                        event.tier,
                        event.aspect,
                        event.asset,
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
            if outdated is not None:
                db.execute(
                    "UPDATE orders SET state = 'failed', failure = ?, renewable = 1 WHERE state = 'awaiting'"
                    " AND oracle_epoch < ?",
                    (outdated.reason, outdated.epoch),
                )
            db.execute("INSERT OR REPLACE INTO cursor VALUES (0, ?, ?)", (block, timestamp))

    def cursor(self) -> tuple[int, int] | None:
        with self._lock:
            row = self._db.execute("SELECT block, timestamp FROM cursor").fetchone()
        return (row[0], row[1]) if row else None

    def token(self, token_id: int) -> TokenRecord | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM tokens WHERE token_id = ?", (token_id,)).fetchone()
        return _token(row) if row else None


def _token(row: tuple) -> TokenRecord:
    *head, escrow, deadline, block, mint_tx, digest, set_tx, refund_tx = row
    return TokenRecord(
        *head,
        int(escrow),
        deadline,
        block,
        mint_tx,
        bytes(digest) if digest is not None else None,
        set_tx,
        refund_tx,
    )


def _order(row: tuple) -> Order:
    head, (max_wei, *middle), (renewable, renewed_by, payer) = row[:6], row[6:15], row[15:18]
    offset, notice = row[19:21]  # row[21]: delivered_at
    return Order(*head, int(max_wei), *middle, bool(renewable), renewed_by, payer, offset, notice)  # type: ignore[arg-type]


def _settle(db: sqlite3.Connection, seen: SeenRequest, now: float) -> None:
    """Ties a confirmed mint to the payment it provably carries: its calldata tag, else (an EIP-681 link) the
    payment's value offset, read back as the mint's excess (`msg.value - escrow`) below one gwei. A payment whose
    link expired is still settled by its own mint (the call may have ended; the order shows the token). A mint
    that carries neither pays no payment; open payments of exactly its terms are told it arrived. A token pays at
    most one payment."""
    event = seen.event
    if db.execute("SELECT 1 FROM orders WHERE token_id = ?", (event.token_id,)).fetchone():
        return  # re-scanned after a restart
    row = None
    if seen.tag is not None:
        row = db.execute("SELECT * FROM orders WHERE id = ?", (seen.tag.hex(),)).fetchone()
    elif seen.value is not None and event.asset == 0 and (offset := (seen.value - event.escrow) % GWEI):
        row = db.execute(
            "SELECT * FROM orders WHERE value_offset = ? AND token_id IS NULL AND state IN ('awaiting', 'expired')"
            " ORDER BY created_at DESC LIMIT 1",
            (offset,),
        ).fetchone()
    if row is None or row[11] not in ("awaiting", "unknown", "expired"):
        if seen.tag is None and event.asset == 0:
            _tell_open_twins(db, event)
        return
    order = _order(row)
    mismatch = _mismatch(order, event)
    if mismatch:
        if order.state == "awaiting":
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
    db.execute(
        "UPDATE orders SET state = 'paid', token_id = ?, mint_tx = ? WHERE id = ?",
        (event.token_id, hex0x(event.mint_tx), order.id),
    )


def _tell_open_twins(db: sqlite3.Connection, event: RequestEvent) -> None:
    db.execute(
        "UPDATE orders SET notice = ? WHERE state = 'awaiting' AND tier = ? AND aspect = ? AND prompt = ?",
        (
            f"a mint with your terms arrived as token {event.token_id} (tx {hex0x(event.mint_tx)}), without this "
            f"payment's id, so it pays no call; if you sent it, get_image({event.token_id})",
            event.tier,
            event.aspect,
            event.prompt,
        ),
    )


def _mismatch(order: Order, event: RequestEvent) -> str | None:
    if event.tier != order.tier:
        return f"is for tier {event.tier}, this call is tier {order.tier}"
    if event.aspect != order.aspect:
        return f"is for aspect ratio #{event.aspect}, this call is #{order.aspect}"
    if event.prompt != order.prompt:
        return "is for another prompt"
    return None
