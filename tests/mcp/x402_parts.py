"""What the x402 tests share: the buyer's side as the x402 SDK sets it up (its own client and `exact` EVM scheme,
spend controls that allow the local USDC), and the seller's side without the MCP server (rail, ledger, relayer)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3
from x402 import x402Client, x402ClientSync
from x402.mechanisms.evm.exact import ExactEvmClientScheme

from genim_devnet.stack import Stack
from genim_mcp.terms import ImageTerms
from genim_mcp.x402_ledger import Ledger
from genim_mcp.x402_settle import Relayer
from genim_mcp.x402_terms import UsdcRail, payment_required
from genimnft.contract import Chain

WINDOW = 300


def spend_controls(network: str, usdc: str, cap: int) -> dict:
    """What a buyer's agent configures for a USDC that is not among the SDK's default assets: the asset on its
    network, capped per payment in USDC units."""
    return {"allowed_assets": [{"network": network, "asset": usdc, "max_amount_per_payment": str(cap)}]}


def buyer_client(account: LocalAccount, network: str, usdc: str, cap: int) -> x402Client:
    """The x402 SDK's async client as an agent sets it up: its `exact` EVM scheme signing with `account`."""
    client = x402Client()
    client.register(network, ExactEvmClientScheme(account))
    return client.set_spend_controls(spend_controls(network, usdc, cap))  # type: ignore[arg-type]


def buyer_client_sync(account: LocalAccount, network: str, usdc: str, cap: int) -> x402ClientSync:
    client = x402ClientSync()
    client.register(network, ExactEvmClientScheme(account))
    return client.set_spend_controls(spend_controls(network, usdc, cap))  # type: ignore[arg-type]


def rail_of(stack: Stack, window: int = WINDOW) -> UsdcRail:
    token = stack.usdc.token.functions
    return UsdcRail(stack.w3.eth.chain_id, stack.address, stack.usdc.address, token.name().call(),
                    token.version().call(), window)  # fmt: skip


@dataclass
class Seller:
    """The seller's x402 parts on one chain, as genim-mcp wires them."""

    rail: UsdcRail
    ledger: Ledger
    relayer: Relayer
    chain: Chain

    def pay(self, buyer: LocalAccount, terms: ImageTerms, cap: int = 10**6) -> dict:
        """The `_meta["x402/payment"]` the SDK's client sends for this call's PaymentRequired."""
        amount = self.chain.contract.functions.price(terms.tier).call()
        required = payment_required(self.rail, terms, amount, "payment required")
        client = buyer_client_sync(buyer, self.rail.network, self.rail.usdc, cap)
        return client.create_payment_payload(required).model_dump(by_alias=True)


def seller(url: str, stack: Stack, relayer: LocalAccount, state: Path, window: int = WINDOW) -> Seller:
    rail = rail_of(stack, window)
    chain = Chain(url, stack.address)
    ledger = Ledger(state)
    return Seller(rail, ledger, Relayer(chain, rail, relayer, ledger, poll=0.1), chain)


def usdc_balance(stack: Stack, account: str) -> int:
    return stack.usdc.balance_of(Web3.to_checksum_address(account))
