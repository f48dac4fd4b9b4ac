"""The job journal: SQLite, one row per token, explicit states, written before every side effect.

A crash at any point leaves each job in the state of its last finished stage, so a restart resumes it
there: a pinned image is not generated again, and a signed transaction is re-broadcast, not re-signed.
The event cursor is saved in the same transaction as the jobs found below it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from genimnft.contract import Asset, RequestEvent


class JobState(StrEnum):
    SEEN = "seen"
    DISPATCHED = "dispatched"  # sent to the GPU workers (workers = "celery"); `attempts` counts dispatches
    GENERATED = "generated"
    IMAGE_PINNED = "image_pinned"
    METADATA_PINNED = "metadata_pinned"
    SUBMITTED = "submitted"
    CONFIRMED = "confirmed"
    SKIPPED = "skipped"
    FAILED = "failed"
    SET_BY_OTHER = "set_by_other"  # another oracle set the image first: final, not this oracle's earnings


FINAL_STATES = (JobState.CONFIRMED, JobState.SKIPPED, JobState.FAILED, JobState.SET_BY_OTHER)

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    token_id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    tier INTEGER NOT NULL,
    aspect INTEGER NOT NULL DEFAULT 0,
    prompt TEXT NOT NULL,
    requester TEXT NOT NULL,
    asset INTEGER NOT NULL DEFAULT 0,
    escrow TEXT NOT NULL,
    deadline INTEGER NOT NULL,
    block_number INTEGER NOT NULL,
    block_hash TEXT NOT NULL,
    mint_tx TEXT,
    image_cid TEXT,
    metadata TEXT,
    metadata_cid TEXT,
    tx_hash TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    note TEXT,
    dispatched_at REAL,
    seen_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state);
CREATE TABLE IF NOT EXISTS cursor (id INTEGER PRIMARY KEY CHECK (id = 1), next_block INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS txs ({txs_columns}
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# Fees are decimal TEXT: a fee the chain accepts can pass SQLite's 64-bit INTEGER (it did, at 7.4e18 wei/gas).
TXS_COLUMNS = """
    hash TEXT PRIMARY KEY,
    nonce INTEGER NOT NULL,
    raw BLOB NOT NULL,
    token_ids TEXT NOT NULL,
    max_fee TEXT NOT NULL,
    priority_fee TEXT NOT NULL,
    sent_at REAL NOT NULL,
    state TEXT NOT NULL"""
NOTICE = "notice."  # meta keys of the conditions `genim-oracle status` shows (waiting for funds...)


# Columns added since the first schema, with their definitions, for journals created before them. Escrows
# journalled before the USDC rail were all ETH (asset 0).
MIGRATIONS = {"aspect": "INTEGER NOT NULL DEFAULT 0", "mint_tx": "TEXT", "dispatched_at": "REAL",
              "asset": "INTEGER NOT NULL DEFAULT 0"}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Job(RequestEvent):
    """A request and how far the daemon has got with it."""

    state: JobState
    image_cid: str | None
    metadata: bytes | None
    metadata_cid: str | None
    tx_hash: str | None
    attempts: int
    note: str | None
    seen_at: float
    dispatched_at: float | None = None


@dataclass(frozen=True)
class SentTx:
    hash: str
    nonce: int
    raw: bytes
    token_ids: list[int]
    max_fee: int
    priority_fee: int
    sent_at: float


class AlreadyRunning(RuntimeError):
    """Another daemon holds this state directory."""


class JournalMismatch(RuntimeError):
    """The journal belongs to another chain or contract."""


def intact(path: Path) -> bool:
    """SQLite's own integrity check, the only grounds for calling a journal corrupt (an error raised while
    using it may be about the values given, not the file)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            return db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    except sqlite3.DatabaseError:
        return False


class Journal:
    def __init__(self, state_dir: Path) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir = state_dir
        self._db = sqlite3.connect(state_dir / "journal.sqlite3", isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA.format(txs_columns=TXS_COLUMNS))
        present = {row["name"] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for column, definition in MIGRATIONS.items():
            if column not in present:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {column} {definition}")
        self._migrate_fees()
        self._lock_file = None

    def _migrate_fees(self) -> None:
        types = {row["name"]: row["type"] for row in self._db.execute("PRAGMA table_info(txs)")}
        if types.get("max_fee") == "TEXT":
            return
        with self._transaction():  # journals from before fees were TEXT: copy the table over
            self._db.execute("ALTER TABLE txs RENAME TO txs_integer_fees")
            self._db.execute(f"CREATE TABLE txs ({TXS_COLUMNS})")
            self._db.execute("INSERT INTO txs SELECT hash, nonce, raw, token_ids, CAST(max_fee AS TEXT),"
                             " CAST(priority_fee AS TEXT), sent_at, state FROM txs_integer_fees")  # fmt: skip
            self._db.execute("DROP TABLE txs_integer_fees")

    def bind(self, chain_id: int, contract: str) -> None:
        """Records the chain and contract at the journal's first start, and checks them at every later one: token
        ids are only unique within one contract on one chain."""
        bound = {key: self._meta(key) for key in ("chain_id", "contract")}
        if bound["chain_id"] is None:
            with self._transaction():
                self._db.execute("INSERT INTO meta (key, value) VALUES ('chain_id', ?), ('contract', ?)",
                                 (str(chain_id), contract))  # fmt: skip
            return
        if (int(bound["chain_id"]), str(bound["contract"]).lower()) != (chain_id, contract.lower()):
            raise JournalMismatch(
                f"state_dir {self.state_dir} holds the journal of contract {bound['contract']} on chain "
                f"{bound['chain_id']}, not of {contract} on chain {chain_id}: give this deployment its own state_dir"
            )

    def set_notice(self, name: str, value: dict | None) -> None:
        """Records (or, with None, clears) a condition the operator should see in `genim-oracle status`."""
        with self._transaction():
            if value is None:
                self._db.execute("DELETE FROM meta WHERE key = ?", (NOTICE + name,))
            else:
                self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                 (NOTICE + name, json.dumps(value)))  # fmt: skip

    def notices(self) -> dict[str, dict]:
        rows = self._db.execute("SELECT key, value FROM meta WHERE key LIKE ?", (NOTICE + "%",)).fetchall()
        return {row["key"].removeprefix(NOTICE): json.loads(row["value"]) for row in rows}

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row["value"] if row else None

    def lock(self) -> None:
        """Takes the state directory for this process; a second daemon on it fails here."""
        handle = (self.state_dir / "daemon.lock").open("w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.close()
            raise AlreadyRunning(f"another genim-oracle is running on {self.state_dir}") from exc
        handle.write(str(os.getpid()))
        handle.flush()
        self._lock_file = handle

    def close(self) -> None:
        self._db.close()
        if self._lock_file is not None:
            self._lock_file.close()

    # cursor and discovery

    def next_block(self, default: int) -> int:
        row = self._db.execute("SELECT next_block FROM cursor WHERE id = 1").fetchone()
        return row["next_block"] if row else default

    def record_scan(self, jobs: Iterable[RequestEvent], next_block: int) -> list[int]:
        """Adds the jobs not yet known and moves the cursor, atomically; returns the new token ids."""
        now = time.time()
        added = []
        with self._transaction():
            for job in jobs:
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO jobs (token_id, state, tier, aspect, prompt, requester, asset, escrow,"
                    " deadline, block_number, block_hash, mint_tx, seen_at, updated_at)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (job.token_id, JobState.SEEN, job.tier, job.aspect, job.prompt, job.requester, int(job.asset),
                     str(job.escrow), job.deadline, job.block_number, job.block_hash, job.mint_tx, now, now),
                )  # fmt: skip
                if cursor.rowcount:
                    added.append(job.token_id)
            self._db.execute(
                "INSERT INTO cursor (id, next_block) VALUES (1, ?) ON CONFLICT(id) DO UPDATE SET next_block = ?",
                (next_block, next_block),
            )
        return added

    def rewind(self, token_id: int, block_number: int) -> None:
        """Forgets a job whose mint block was reorganised away and moves the cursor back to that block."""
        with self._transaction():
            self._db.execute("DELETE FROM jobs WHERE token_id = ?", (token_id,))
            self._db.execute("UPDATE cursor SET next_block = MIN(next_block, ?) WHERE id = 1", (block_number,))

    # jobs

    def jobs(self, *states: JobState, limit: int = 1000) -> list[Job]:
        marks = ",".join("?" * len(states))
        rows = self._db.execute(
            f"SELECT * FROM jobs WHERE state IN ({marks}) ORDER BY deadline, token_id LIMIT ?", (*states, limit)
        ).fetchall()
        return [_job(r) for r in rows]

    def job(self, token_id: int) -> Job | None:
        row = self._db.execute("SELECT * FROM jobs WHERE token_id = ?", (token_id,)).fetchone()
        return _job(row) if row else None

    def advance(self, token_id: int, state: JobState, **fields: object) -> None:
        """Moves a job to `state`, setting the given columns in the same write."""
        columns = ", ".join(f"{name} = ?" for name in fields)
        assignments = f"state = ?, updated_at = ?{', ' + columns if columns else ''}"
        with self._transaction():
            self._db.execute(
                f"UPDATE jobs SET {assignments} WHERE token_id = ?", (state, time.time(), *fields.values(), token_id)
            )

    def count_attempt(self, token_id: int, note: str) -> int:
        with self._transaction():
            self._db.execute(
                "UPDATE jobs SET attempts = attempts + 1, note = ?, updated_at = ? WHERE token_id = ?",
                (note, time.time(), token_id),
            )
        return self._db.execute("SELECT attempts FROM jobs WHERE token_id = ?", (token_id,)).fetchone()[0]

    def earnings(self) -> dict[Asset, tuple[int, int]]:
        """Per asset, (images this oracle set, their escrow before fee in the asset's base units)."""
        totals = dict.fromkeys(Asset, (0, 0))
        rows = self._db.execute("SELECT asset, escrow FROM jobs WHERE state = ?", (JobState.CONFIRMED,))
        for row in rows.fetchall():  # escrow is decimal TEXT: summed in Python, beyond SQLite's 64 bits
            images, escrow = totals[Asset(row["asset"])]
            totals[Asset(row["asset"])] = (images + 1, escrow + int(row["escrow"]))
        return totals

    def counts(self) -> dict[str, int]:
        rows = self._db.execute("SELECT state, COUNT(*) AS n FROM jobs GROUP BY state").fetchall()
        counts = {state.value: 0 for state in JobState}
        counts.update({r["state"]: r["n"] for r in rows})
        return counts

    # transactions

    def record_tx(self, tx: SentTx) -> None:
        """Stores a signed transaction and marks its jobs submitted, before it is broadcast."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO txs (hash, nonce, raw, token_ids, max_fee, priority_fee, sent_at, state)"
                " VALUES (?,?,?,?,?,?,?,'pending')",
                (
                    tx.hash,
                    tx.nonce,
                    tx.raw,
                    json.dumps(tx.token_ids),
                    str(tx.max_fee),
                    str(tx.priority_fee),
                    tx.sent_at,
                ),
            )
            for token_id in tx.token_ids:
                self._db.execute(
                    "UPDATE jobs SET state = ?, tx_hash = ?, updated_at = ? WHERE token_id = ?",
                    (JobState.SUBMITTED, tx.hash, time.time(), token_id),
                )

    def next_nonce(self) -> int:
        """One past the highest nonce this journal signed (0 for none)."""
        row = self._db.execute("SELECT MAX(nonce) FROM txs").fetchone()
        return 0 if row[0] is None else row[0] + 1

    def pending_txs(self) -> list[SentTx]:
        return self.txs("pending")

    def txs(self, *states: str) -> list[SentTx]:
        """Signed transactions in the given states (pending, mined, replaced), or all of them."""
        states = states or ("pending", "mined", "replaced")
        marks = ",".join("?" * len(states))
        rows = self._db.execute(f"SELECT * FROM txs WHERE state IN ({marks}) ORDER BY nonce, sent_at", states)
        return [
            SentTx(
                r["hash"],
                r["nonce"],
                bytes(r["raw"]),
                json.loads(r["token_ids"]),
                int(r["max_fee"]),
                int(r["priority_fee"]),
                r["sent_at"],
            )
            for r in rows.fetchall()
        ]

    def close_txs(self, nonce: int, mined_hash: str | None) -> None:
        """Settles every transaction sent with `nonce`: the mined one, and the replaced ones."""
        with self._transaction():
            self._db.execute("UPDATE txs SET state = 'replaced' WHERE nonce = ? AND state = 'pending'", (nonce,))
            if mined_hash:
                self._db.execute("UPDATE txs SET state = 'mined' WHERE hash = ?", (mined_hash,))

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _job(row: sqlite3.Row) -> Job:
    return Job(
        token_id=row["token_id"],
        state=JobState(row["state"]),
        tier=row["tier"],
        aspect=row["aspect"],
        prompt=row["prompt"],
        requester=row["requester"],
        asset=Asset(row["asset"]),
        escrow=int(row["escrow"]),
        deadline=row["deadline"],
        block_number=row["block_number"],
        block_hash=row["block_hash"],
        mint_tx=row["mint_tx"] or "",
        image_cid=row["image_cid"],
        metadata=row["metadata"].encode() if row["metadata"] else None,
        metadata_cid=row["metadata_cid"],
        tx_hash=row["tx_hash"],
        attempts=row["attempts"],
        note=row["note"],
        seen_at=row["seen_at"],
        dispatched_at=row["dispatched_at"],
    )
