"""The front's configuration: one TOML file (see genim-mcp.example.toml) plus GENIM_MCP_* environment overrides."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from genimnft.settings import ChainSettings, load_settings


class FrontConfig(ChainSettings):
    chain_name: str = "OP Mainnet"
    # What a wallet is told to add when it lacks the chain (hosted mode); the operator's own RPC otherwise.
    public_rpc_uri: str | None = None
    explorer_url: str | None = None

    ipfs_api: str = "http://127.0.0.1:5001"
    gateway_url: str = "https://ipfs.io"
    state_dir: Path = Path("mcp-state")
    poll_interval: float = Field(1.0, gt=0, description="seconds between the follower's chain reads")
    price_refresh: float = Field(30.0, gt=0, description="seconds between reads of prices (USD and wei) and timeout")
    payment_poll: float = Field(0.5, gt=0, description="seconds between paymcp's payment status checks")
    payment_ttl: float = Field(900.0, gt=0, le=900, description="seconds a payment link stays open")
    progress_every: float = Field(10.0, gt=0, description="seconds between progress notes while generating")
    # Opening payments is rate-limited per client (hosted: per MCP session and per remote address); payments that
    # ended unpaid (expired, failed, no token) are deleted `order_retention` seconds after their link ran out.
    payments_per_minute_session: int = Field(6, ge=1, description="payments one MCP session may open per minute")
    payments_per_minute_address: int = Field(30, ge=1, description="payments one remote address may open per minute")
    order_retention: float = Field(7 * 86400.0, gt=0, description="seconds unpaid payments are kept after expiry")
    # What list_tiers and the tool descriptions promise per tier: the pixel budget the oracle is configured with.
    tier_sizes: tuple[str, str, str] = ("512x512", "1024x1024", "2048x2048")
    preview_max_px: int = Field(512, ge=64, description="longest side of the PNG preview in tool results")

    # An ETH mint sends priceInWei plus this margin, so a rate that moves before it is mined does not make it revert;
    # the contract charges the dollar price at the rate of that block and returns the excess in the same transaction.
    price_margin_bps: int = Field(200, ge=0, le=5000, description="basis points a mint sends above priceInWei")

    mode: Literal["hosted", "local"] = "hosted"
    # Hosted mode: streamable HTTP and the pay page on one port.
    host: str = "127.0.0.1"
    port: int = Field(8765, ge=0)
    public_url: str | None = None
    # Local mode: the buyer's own account pays, under caps on the escrow sent (gas is extra). `local_rail` is what
    # it pays with: "eth", its own mint (caps in wei), or "usdc", an x402 authorization it signs for exactly the
    # dollar price, settled by mintWithAuthorization from `relayer` or, unset, from the account itself (caps in USD).
    account: str | None = None
    passphrase_env: str = "GENIM_PASSPHRASE"
    local_rail: Literal["eth", "usdc"] = "eth"
    max_wei_per_call: int = Field(0, ge=0)
    max_wei_per_day: int = Field(0, ge=0, description="per UTC day")
    max_usd_per_call: Decimal = Field(Decimal(0), ge=0, decimal_places=6, description="local_rail = usdc")
    max_usd_per_day: Decimal = Field(Decimal(0), ge=0, decimal_places=6, description="per UTC day, local_rail = usdc")
    # x402: agents pay USDC by an EIP-3009 authorization that this server settles itself, sending
    # mintWithAuthorization from `relayer` (an `ape accounts` alias, TEST::n locally), which pays only the gas and
    # should hold only gas money. Unset in hosted mode: no x402. The window is the offer's maxTimeoutSeconds.
    relayer: str | None = None
    relayer_passphrase_env: str = "GENIM_RELAYER_PASSPHRASE"
    x402_window: int = Field(300, ge=60, le=600, description="seconds an x402 authorization may stay valid")

    @model_validator(mode="after")
    def _complete(self) -> FrontConfig:
        if self.mode == "local" and not self.account:
            raise ValueError("local mode pays from `account` (an `ape accounts` alias, or TEST::n on local chains)")
        if self.mode != "local":
            return self
        if self.local_rail == "eth" and (self.max_wei_per_call == 0 or self.max_wei_per_day == 0):
            raise ValueError("local mode needs spending caps: set `max_wei_per_call` and `max_wei_per_day`")
        if self.local_rail == "usdc" and (self.max_usd_per_call == 0 or self.max_usd_per_day == 0):
            raise ValueError("local mode on USDC needs spending caps: set `max_usd_per_call` and `max_usd_per_day`")
        return self

    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")


def load_config(path: Path | None, overrides: dict[str, object] | None = None) -> FrontConfig:
    """Reads the TOML file, then GENIM_MCP_<FIELD> environment variables, then explicit overrides."""
    return load_settings(FrontConfig, path, "GENIM_MCP_", overrides)
