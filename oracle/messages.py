"""What a worker may send the coordinator: one schema, checked on arrival before any field is read.

Anyone who reaches the broker can publish onto a results queue, so a message is refused on its size, its
encoding (JSON only: a pickled or compressed body is never decoded) and its schema (types, lengths, the
fields its kind needs). A refusal carries a short reason and a one-line detail that never quotes the body.
"""

from __future__ import annotations

from typing import Annotated, Literal

from multiformats import CID
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MAX_RESULT_BYTES = 4096  # a result is a few hundred bytes; anything larger is not one
MAX_ERROR_CHARS = 300
SHA256_HEX = r"^[0-9a-f]{64}$"


class WorkResult(BaseModel):
    """`hello` when a worker starts (and every 30 s), then a `result` or a `failure` per job attempt."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    kind: Literal["hello", "result", "failure"]
    worker: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@:+-]+$")
    fingerprint: str = Field(pattern=r"^[0-9a-f]{16}$")
    token_id: int = Field(0, ge=0, lt=2**63)  # SQLite's INTEGER
    attempt: int = Field(0, ge=0, lt=2**31)
    image_cid: str = Field("", max_length=128)  # base32 once validated
    metadata_cid: str = Field("", max_length=128)
    digest: str = Field("", pattern=r"^([0-9a-f]{64})?$")  # sha256 of the metadata bytes
    image_sha256: str = Field("", pattern=r"^([0-9a-f]{64})?$")  # of the PNG bytes the worker generated
    seconds: float = Field(0.0, ge=0, le=86_400)
    error: str = Field("", max_length=MAX_ERROR_CHARS)
    # A hello's model and tier settings, one line each (oracle.config.settings_summary): a refusal names the ones
    # that differ.
    settings: dict[Annotated[str, Field(max_length=64)], Annotated[str, Field(max_length=160)]] = Field(
        default_factory=dict, max_length=64
    )

    @field_validator("image_cid", "metadata_cid")
    @classmethod
    def _cid(cls, value: str) -> str:
        if not value:
            return value
        try:
            return str(CID.decode(value).set(base="base32"))
        except (KeyError, ValueError) as exc:
            raise ValueError("not a CID") from exc

    @model_validator(mode="after")
    def _complete(self) -> WorkResult:
        if self.kind != "hello" and (self.token_id < 1 or self.attempt < 1):
            raise ValueError(f"a {self.kind} names a token id and an attempt")
        if self.kind == "result" and not all((self.image_cid, self.metadata_cid, self.digest, self.image_sha256)):
            raise ValueError("a result carries image_cid, metadata_cid, digest and image_sha256")
        return self


class RejectedMessage(ValueError):
    """A message that is not a WorkResult; `reason` labels the metric, str() is one bounded line."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__("".join(c if c.isprintable() else "?" for c in detail[:200]))  # a key may hold anything
        self.reason = reason


def decode_result(body: bytes, content_type: str | None, content_encoding: str | None) -> WorkResult:
    if len(body) > MAX_RESULT_BYTES:
        raise RejectedMessage("size", f"{len(body)} bytes, over the {MAX_RESULT_BYTES}-byte limit")
    if content_type != "application/json" or (content_encoding or "utf-8") != "utf-8":
        raise RejectedMessage("encoding", f"content type {str(content_type)[:60]!r}, encoding "
                                          f"{str(content_encoding)[:30]!r}: only JSON in UTF-8")  # fmt: skip
    try:
        return WorkResult.model_validate_json(body)
    except ValidationError as exc:
        problems = exc.errors(include_url=False, include_input=False, include_context=False)
        summary = "; ".join(f"{'.'.join(map(str, p['loc'])) or 'message'}: {p['msg']}" for p in problems[:3])
        raise RejectedMessage("schema", summary) from None
