"""The whole local contract stack on a web3 chain: Circle's USDC, Chainlink's feeds and GenImNFT, with mints on
both rails (ETH at the feed's rate, USDC by the buyer's EIP-3009 authorization sent by a relayer)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from web3 import Web3
from web3.contract import Contract
from web3.contract.contract import ContractFunction
from web3.logs import DISCARD
from web3.types import TxReceipt

from genim_devnet.feeds import Feeds, deploy_feeds
from genim_devnet.localnet import TEST_MNEMONIC
from genim_devnet.txn import send
from genim_devnet.usdc import Usdc, deploy_usdc, random_nonce, sign_transfer_authorization

USD_PRICES = (100_000, 300_000, 800_000)  # $0.10, $0.30, $0.80 in USDC's 6 decimals: the contract's unit
FEE_BPS = 500
USD_PER_ETH = 3000
DOLLAR = 10**6
HEARTBEAT = 1200  # Chainlink's ETH/USD on OP Mainnet posts a round at least this often
AUTHORIZATION_LIFETIME = 3600  # seconds a buyer's USDC authorization stays valid
USDC_ADMIN, USDC_OWNER = 29, 28  # test-mnemonic accounts that hold USDC's roles; tests buy from the lower ones
ETH, USDC = 0, 1  # GenImNFT.Asset

Account.enable_unaudited_hdwallet_features()


def dev_account(index: int) -> LocalAccount:
    """The `index`-th account of the test mnemonic (anvil's and Ape's test accounts)."""
    return Account.from_mnemonic(TEST_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")


@dataclass(frozen=True)
class Stack:
    """GenImNFT and what it pays in and reads: `nft` at its address, USDC and the feeds with their keys."""

    nft: Contract
    usdc: Usdc
    feeds: Feeds
    owner: LocalAccount
    relayer: LocalAccount  # sends USDC mints for buyers, as the MCP front or any relayer would
    oracles: tuple[ChecksumAddress, ...]
    block: int  # GenImNFT's deployment block: where followers start
    usd_prices: tuple[int, int, int]
    fee_bps: int

    @property
    def w3(self) -> Web3:
        return self.nft.w3

    @property
    def address(self) -> ChecksumAddress:
        return self.nft.address

    def oracle_epoch(self) -> int:
        return self.nft.functions.oracleEpoch().call()

    def price_in_wei(self, tier: int) -> int:
        """What an ETH mint of `tier` is charged now (after a heartbeat, if the feed needed one)."""
        self.heartbeat()
        return self.nft.functions.priceInWei(tier).call()

    def heartbeat(self) -> None:
        """Posts the ETH/USD answer again if its round is older than Chainlink's heartbeat at the next block, as
        Chainlink would have on a live chain; a dev chain's clock may have been moved past it."""
        feed = self.feeds.eth_usd.functions
        round_id, answer, _, updated_at, _ = feed.latestRoundData().call()
        at = self.w3.eth.get_block("pending")["timestamp"]
        if at - updated_at >= HEARTBEAT:
            # Dated explicitly: gas estimation runs at the latest block's time, so updateAnswer's estimate
            # (block.timestamp written) can fall short once the clock has moved.
            send(self.w3, self.feeds.updater, feed.updateRoundData(round_id + 1, answer, at, at))

    def mint_call(self, prompt: str, tier: int, aspect: int = 0) -> ContractFunction:
        """The ETH mint, naming the oracle epoch as it is now; send it with `value=price_in_wei(tier)` or more."""
        return self.nft.functions.mint(prompt, tier, aspect, self.oracle_epoch())

    def mint(self, buyer: LocalAccount, prompt: str, tier: int, aspect: int = 0, excess: int = 0) -> int:
        """Mints on the ETH rail from `buyer`, paying the price in wei now plus `excess` (which comes back)."""
        value = self.price_in_wei(tier) + excess
        return self.token_id(send(self.w3, buyer, self.mint_call(prompt, tier, aspect), value))

    def authorization_call(
        self, buyer: LocalAccount, prompt: str, tier: int, aspect: int = 0, *, packed: bool = True
    ) -> ContractFunction:
        """`buyer`'s USDC mint: they sign an authorization for exactly price(tier) to the contract, valid for
        AUTHORIZATION_LIFETIME, with a fresh nonce; `packed` picks the `bytes signature` overload (else v, r, s)."""
        value = self.nft.functions.price(tier).call()
        valid_before = self.w3.eth.get_block("latest")["timestamp"] + AUTHORIZATION_LIFETIME
        nonce = random_nonce()
        sig = sign_transfer_authorization(
            buyer, self.usdc.address, self.w3.eth.chain_id, self.address, value, 0, valid_before, nonce
        )
        terms = (prompt, tier, aspect, self.oracle_epoch(), buyer.address, 0, valid_before, nonce)
        signature = (sig.signature,) if packed else (sig.v, sig.r, sig.s)
        return self.nft.functions.mintWithAuthorization(*terms, *signature)

    def mint_usdc(self, buyer: LocalAccount, prompt: str, tier: int, aspect: int = 0, *, packed: bool = True) -> int:
        """Mints on the USDC rail: `buyer` signs, the relayer sends; the token is `buyer`'s."""
        return self.token_id(send(self.w3, self.relayer, self.authorization_call(buyer, prompt, tier, aspect,
                                                                                  packed=packed)))  # fmt: skip

    def fund_usdc(self, accounts: list[str], amount: int = 100 * DOLLAR) -> None:
        """Mints `amount` USDC units to each of `accounts` (buyers of the USDC rail)."""
        for account in accounts:
            self.usdc.mint(account, amount)

    def token_id(self, receipt: TxReceipt) -> int:
        """The token a mint receipt minted."""
        [event] = self.nft.events.ImageRequested().process_receipt(receipt, errors=DISCARD)
        return event["args"]["tokenId"]


def deploy_stack(
    w3: Web3,
    abi: list[dict[str, Any]],
    bytecode: str,
    owner: LocalAccount,
    oracles: list[str],
    *,
    usd_prices: tuple[int, int, int] = USD_PRICES,
    fee_bps: int = FEE_BPS,
    usd_per_eth: Decimal | int | str = USD_PER_ETH,
    sequencer_feed: bool = True,
    relayer: LocalAccount | None = None,
) -> Stack:
    """Deploys USDC (Circle's FiatTokenV2_2 behind its proxy; roles on test accounts USDC_OWNER and USDC_ADMIN),
    the ETH/USD and sequencer uptime feeds (from `owner`, at `usd_per_eth`), then GenImNFT from `abi` and
    `bytecode` (e.g. Ape's `project.GenImNFT.contract_type`) owned by `owner` with `oracles` authorised.
    `sequencer_feed` False deploys it as on a chain without a sequencer feed (address zero)."""
    usdc = deploy_usdc(w3, dev_account(USDC_ADMIN), dev_account(USDC_OWNER))
    feeds = deploy_feeds(w3, owner, usd_per_eth)
    sequencer = feeds.sequencer.address if sequencer_feed else "0x" + "00" * 20
    oracle_addresses = tuple(Web3.to_checksum_address(a) for a in oracles)
    args = (owner.address, list(usd_prices), fee_bps, list(oracle_addresses), usdc.address, feeds.eth_usd.address,
            sequencer)  # fmt: skip
    receipt = send(w3, owner, w3.eth.contract(abi=abi, bytecode=bytecode).constructor(*args))
    nft = w3.eth.contract(address=receipt["contractAddress"], abi=abi)
    return Stack(nft, usdc, feeds, owner, relayer or owner, oracle_addresses, receipt["blockNumber"], usd_prices,
                 fee_bps)  # fmt: skip
