"""GenImNFT through Ape: every external function and revert path, on both rails (ETH at Chainlink's rate, USDC by
EIP-3009 authorization, with Circle's real FiatTokenV2_2 and Chainlink's MockV3Aggregator), on the in-process
chain and on anvil."""

from __future__ import annotations

import hashlib

import ape
import pytest
from multiformats import CID, multihash

from genim_devnet.feeds import GRACE_PERIOD, usd_answer
from genim_devnet.stack import ETH, FEE_BPS, USD_PER_ETH, USD_PRICES, USDC, dev_account
from genim_devnet.txn import send
from genim_devnet.usdc import random_nonce, sign_cancel_authorization, sign_transfer_authorization

PENDING, FULFILLED, REFUNDED = 1, 2, 3
BASIC, PREMIUM, ULTRA = USD_PRICES  # US dollars with 6 decimals: $0.10, $0.30, $0.80
PROMPT = "a lighthouse on a basalt cliff at dawn"
MAX_PRICE_AGE = 3600  # the contract's default
FOREVER = 2**40


def wei_at(usd: int, usd_per_eth: int = USD_PER_ETH) -> int:
    """`usd` (6 decimals) in wei at `usd_per_eth`, rounded up to a whole gwei: the price an ETH mint is charged."""
    return -(-usd * 10**3 // usd_per_eth) * 10**9  # gwei = ceil(usd * 10**(8 + 3) / (usd_per_eth * 10**8))


def fee_of(amount: int) -> int:
    return amount * FEE_BPS // 10_000


def digest_of(metadata: bytes) -> bytes:
    return hashlib.sha256(metadata).digest()


def mint(nft, stack, who, tier: int = 0, prompt: str = PROMPT, extra: int = 0, aspect: int = 0) -> int:
    """An ETH mint naming the current oracle epoch and paying priceInWei plus `extra`."""
    stack.heartbeat()  # the clock may have been moved past the feed's last round
    receipt = nft.mint(prompt, tier, aspect, nft.oracleEpoch(), sender=who, value=nft.priceInWei(tier) + extra)
    return receipt.events.filter(nft.ImageRequested)[0].tokenId


def authorization(stack, buyer, tier: int = 0, prompt: str = PROMPT, aspect: int = 0, packed: bool = True) -> tuple:
    """The arguments of `buyer`'s mintWithAuthorization: signed for exactly price(tier), at the current epoch."""
    return tuple(stack.authorization_call(dev_account(buyer.index), prompt, tier, aspect, packed=packed).args)


def usdc_mint(nft, stack, buyer, relayer, tier: int = 0, aspect: int = 0) -> int:
    receipt = nft.mintWithAuthorization(*authorization(stack, buyer, tier, aspect=aspect), sender=relayer)
    return receipt.events.filter(nft.ImageRequested)[0].tokenId


@pytest.fixture(scope="module", autouse=True)
def usdc_buyers(stack, alice, bob):
    stack.fund_usdc([alice.address, bob.address], 10 * 10**6)


# ETH rail


def test_prices_are_dollars_and_eth_is_charged_at_the_feed_rate(nft, stack):
    assert [nft.price(tier) for tier in range(3)] == [BASIC, PREMIUM, ULTRA]
    charged = [nft.priceInWei(tier) for tier in range(3)]
    assert charged == [wei_at(p) for p in USD_PRICES] == [33_334 * 10**9, 10**14, 266_667 * 10**9]
    stack.feeds.set_price(2000)
    assert nft.priceInWei(1) == wei_at(PREMIUM, 2000) == 15 * 10**13


def test_mint_binds_prompt_and_escrows_the_eth_charged(nft, stack, alice, chain):
    token_id = nft.nextTokenId()
    escrow = nft.priceInWei(1)
    receipt = nft.mint(PROMPT, 1, 2, nft.oracleEpoch(), sender=alice, value=escrow)
    [event] = receipt.events.filter(nft.ImageRequested)
    assert event.tokenId == token_id and event.requester == alice
    assert nft.nextTokenId() == token_id + 1
    assert (event.prompt, event.tier, event.aspect, event.asset, event.escrow) == (PROMPT, 1, 2, ETH, escrow)
    status, tier, aspect, asset, deadline, stored, digest = nft.request(token_id)
    assert (status, tier, aspect, asset, stored) == (PENDING, 1, 2, ETH, escrow)
    assert deadline == event.deadline == chain.blocks.head.timestamp + 3600
    assert digest == b"\x00" * 32
    assert nft.ownerOf(token_id) == alice
    assert nft.balance == escrow


def test_excess_is_returned(nft, alice):
    before = alice.balance
    charged = nft.priceInWei(0)
    receipt = nft.mint(PROMPT, 0, 0, nft.oracleEpoch(), sender=alice, value=charged + 12345)
    assert alice.balance == before - charged - receipt.total_fees_paid
    assert nft.balance == charged


def test_short_payment_reverts(nft, alice):
    charged = nft.priceInWei(2)
    with ape.reverts(nft.InsufficientPayment, tier=2, price=charged, paid=charged - 1):
        nft.mint(PROMPT, 2, 0, nft.oracleEpoch(), sender=alice, value=charged - 1)


@pytest.mark.parametrize("prompt", ["", "x" * 1001, "é" * 501])
def test_bad_prompt_reverts_with_named_error(nft, alice, prompt):
    value, epoch = nft.priceInWei(0), nft.oracleEpoch()
    if prompt:
        with ape.reverts(nft.PromptTooLong, length=len(prompt.encode()), maxLength=1000):
            nft.mint(prompt, 0, 0, epoch, sender=alice, value=value)
    else:
        with ape.reverts(nft.EmptyPrompt):
            nft.mint(prompt, 0, 0, epoch, sender=alice, value=value)


def test_prompt_of_exactly_1000_bytes_is_accepted(nft, stack, alice):
    prompt = "ü" * 500  # 1000 bytes of UTF-8
    token_id = mint(nft, stack, alice, prompt=prompt)
    assert nft.request(token_id).status == PENDING


def test_paused_mint_reverts_on_both_rails_and_unpause_restores(nft, stack, owner, alice, relayer):
    nft.pause(sender=owner)
    assert nft.paused()
    with ape.reverts(nft.MintingIsPaused):
        nft.mint(PROMPT, 0, 0, nft.oracleEpoch(), sender=alice, value=nft.priceInWei(0))
    with ape.reverts(nft.MintingIsPaused):
        nft.mintWithAuthorization(*authorization(stack, alice), sender=relayer)
    nft.unpause(sender=owner)
    mint(nft, stack, alice)
    usdc_mint(nft, stack, alice, relayer)


def test_unknown_and_disabled_tiers_revert(nft, owner, alice):
    epoch = nft.oracleEpoch()
    with ape.reverts(nft.UnknownTier, tier=3):
        nft.mint(PROMPT, 3, 0, epoch, sender=alice, value=10**16)
    nft.setPrice(1, 0, sender=owner)
    assert nft.priceInWei(1) == 0
    with ape.reverts(nft.TierDisabled, tier=1):
        nft.mint(PROMPT, 1, 0, epoch, sender=alice, value=10**16)


def test_unknown_aspect_reverts_before_payment(nft, alice):
    before = nft.balance
    with ape.reverts(nft.UnknownAspect, aspect=4):
        nft.mint(PROMPT, 0, 4, nft.oracleEpoch(), sender=alice, value=nft.priceInWei(0))
    assert nft.balance == before


# USDC rail


def test_usdc_mint_end_to_end_relayed_set_and_withdrawn_in_usdc(nft, stack, owner, oracle, alice, relayer):
    """Alice holds USDC and signs; the relayer sends and pays the gas; the token and its USDC escrow are hers; the
    oracle and the owner are paid in USDC."""
    usdc = stack.usdc
    alice_eth, alice_usdc = alice.balance, usdc.balance_of(alice.address)
    receipt = nft.mintWithAuthorization(*authorization(stack, alice, tier=1, aspect=3), sender=relayer)
    [event] = receipt.events.filter(nft.ImageRequested)
    token_id = event.tokenId
    assert (event.requester, event.tier, event.aspect, event.asset, event.escrow) == (alice, 1, 3, USDC, PREMIUM)
    assert nft.ownerOf(token_id) == alice and nft.request(token_id).asset == USDC
    assert alice.balance == alice_eth, "the buyer needs no ether"
    assert usdc.balance_of(alice.address) == alice_usdc - PREMIUM
    assert usdc.balance_of(nft.address) == nft.usdcLiabilities() == PREMIUM
    assert nft.balance == 0

    [image] = nft.setImage(token_id, digest_of(b"m"), sender=oracle).events.filter(nft.ImageSet)
    assert (image.asset, image.payment, image.fee) == (USDC, PREMIUM - fee_of(PREMIUM), fee_of(PREMIUM))
    assert (nft.usdcCredit(oracle), nft.credit(oracle)) == (PREMIUM - fee_of(PREMIUM), 0)
    assert (nft.usdcCredit(owner), nft.credit(owner)) == (fee_of(PREMIUM), 0)

    oracle_usdc = usdc.balance_of(oracle.address)
    [withdrawn] = nft.withdraw(sender=oracle).events.filter(nft.Withdrawn)
    assert (withdrawn.ethAmount, withdrawn.usdcAmount) == (0, PREMIUM - fee_of(PREMIUM))
    assert usdc.balance_of(oracle.address) == oracle_usdc + PREMIUM - fee_of(PREMIUM)
    nft.withdraw(sender=owner)
    assert usdc.balance_of(nft.address) == nft.usdcLiabilities() == 0


def test_usdc_mint_takes_the_v_r_s_form(nft, stack, alice, relayer):
    receipt = nft.mintWithAuthorization(*authorization(stack, alice, tier=2, packed=False), sender=relayer)
    [event] = receipt.events.filter(nft.ImageRequested)
    assert (event.asset, event.escrow, nft.ownerOf(event.tokenId)) == (USDC, ULTRA, alice)


def test_usdc_authorization_for_another_value_is_refused_by_usdc(nft, stack, alice, relayer, chain):
    nonce = random_nonce()
    signed = sign_transfer_authorization(dev_account(alice.index), stack.usdc.address, chain.chain_id, nft.address,
                                         BASIC - 1, 0, FOREVER, nonce)  # fmt: skip
    with ape.reverts("FiatTokenV2: invalid signature"):
        nft.mintWithAuthorization(PROMPT, 0, 0, nft.oracleEpoch(), alice, 0, FOREVER, nonce, signed.signature,
                                  sender=relayer)  # fmt: skip
    assert nft.usdcLiabilities() == 0


def test_usdc_authorization_mints_once(nft, stack, alice, relayer):
    args = authorization(stack, alice)
    nft.mintWithAuthorization(*args, sender=relayer)
    liabilities = nft.usdcLiabilities()
    with ape.reverts(nft.PaymentNotReceived, balance=liabilities, liabilities=liabilities + BASIC):
        nft.mintWithAuthorization(*args, sender=relayer)


def test_front_run_authorization_still_mints_once(nft, stack, alice, bob, relayer):
    """Bob copies Alice's signed authorization and sends it to USDC himself: the USDC arrives with no token. Her
    mint still goes through, backed by that USDC, and only once."""
    args = authorization(stack, alice, tier=1)
    _prompt, _tier, _aspect, _epoch, buyer, valid_after, valid_before, nonce, signature = args
    usdc = stack.usdc
    send(usdc.w3, dev_account(bob.index), usdc.token.functions.transferWithAuthorization(
        buyer, nft.address, PREMIUM, valid_after, valid_before, nonce, signature))  # fmt: skip
    assert usdc.balance_of(nft.address) == PREMIUM and nft.usdcLiabilities() == 0
    token_id = nft.mintWithAuthorization(*args, sender=relayer).events.filter(nft.ImageRequested)[0].tokenId
    assert nft.ownerOf(token_id) == alice and nft.request(token_id).escrow == PREMIUM
    assert usdc.balance_of(nft.address) == nft.usdcLiabilities() == PREMIUM
    with ape.reverts(nft.AuthorizationNotUsable, **{"from": alice.address}, nonce=nonce):
        nft.mintWithAuthorization(*args, sender=relayer)


def test_cancelled_authorization_mints_nothing(nft, stack, alice, relayer, chain):
    args = authorization(stack, alice)
    nonce = args[7]
    cancel = sign_cancel_authorization(dev_account(alice.index), stack.usdc.address, chain.chain_id, nonce)
    send(stack.usdc.w3, dev_account(relayer.index), stack.usdc.token.functions.cancelAuthorization(
        alice.address, nonce, cancel.v, cancel.r, cancel.s))  # fmt: skip
    with ape.reverts(nft.PaymentNotReceived, balance=0, liabilities=BASIC):
        nft.mintWithAuthorization(*args, sender=relayer)


# Oracles, images, credit


def test_set_image_credits_oracle_and_fee(nft, stack, owner, oracle, alice):
    token_id = mint(nft, stack, alice, tier=2)
    escrow = nft.request(token_id).escrow
    receipt = nft.setImage(token_id, digest_of(b'{"name":"GenImNFT #1"}'), sender=oracle)
    [event] = receipt.events.filter(nft.ImageSet)
    assert (event.asset, event.payment, event.fee) == (ETH, escrow - fee_of(escrow), fee_of(escrow))
    assert receipt.events.filter(nft.MetadataUpdate)[0]._tokenId == token_id
    assert nft.request(token_id).status == FULFILLED
    assert nft.credit(oracle) == escrow - fee_of(escrow)
    assert nft.credit(owner) == fee_of(escrow)


def test_token_uri_is_the_cid_multiformats_computes(nft, stack, owner, oracle, alice):
    nft.setPlaceholderURI("ipfs://placeholder", sender=owner)
    token_id = mint(nft, stack, alice)
    assert nft.tokenURI(token_id) == "ipfs://placeholder"
    metadata = b'{"name":"GenImNFT #1","description":"a lighthouse"}'
    nft.setImage(token_id, digest_of(metadata), sender=oracle)
    expected = CID("base32", 1, "raw", multihash.digest(metadata, "sha2-256"))
    assert nft.tokenURI(token_id) == f"ipfs://{expected}"
    assert str(expected).startswith("bafkrei")


def test_second_set_image_reverts(nft, stack, oracle, alice):
    token_id = mint(nft, stack, alice)
    first = digest_of(b"first")
    nft.setImage(token_id, first, sender=oracle)
    with ape.reverts(nft.ImageAlreadySet, tokenId=token_id, metadataDigest=first):
        nft.setImage(token_id, digest_of(b"second"), sender=oracle)


def test_non_oracle_reverts(nft, stack, alice, bob):
    token_id = mint(nft, stack, alice)
    with ape.reverts(nft.NotOracle, account=bob):
        nft.setImage(token_id, digest_of(b"m"), sender=bob)


def test_set_image_after_deadline_reverts(nft, stack, oracle, alice, chain):
    token_id = mint(nft, stack, alice)
    deadline = nft.request(token_id).deadline
    chain.pending_timestamp = deadline
    with ape.reverts(nft.DeadlinePassed, tokenId=token_id, deadline=deadline):
        nft.setImage(token_id, digest_of(b"late"), sender=oracle)


def test_zero_digest_and_unknown_token_revert(nft, stack, oracle, alice):
    token_id = mint(nft, stack, alice)
    with ape.reverts(nft.InvalidDigest, tokenId=token_id):
        nft.setImage(token_id, b"\x00" * 32, sender=oracle)
    with ape.reverts(nft.RequestNotPending, tokenId=999, status=0):
        nft.setImage(999, digest_of(b"m"), sender=oracle)


def test_set_images_batch_across_assets_all_or_nothing(nft, stack, owner, oracle, alice, bob, relayer):
    a, b, c = mint(nft, stack, alice, 0), usdc_mint(nft, stack, bob, relayer, 1), mint(nft, stack, alice, 2)
    nft.setImage(c, digest_of(b"c"), sender=oracle)
    with ape.reverts(nft.ImageAlreadySet):
        nft.setImages([a, b, c], [digest_of(b"a"), digest_of(b"b"), digest_of(b"c2")], sender=oracle)
    assert nft.request(a).status == PENDING
    receipt = nft.setImages([a, b], [digest_of(b"a"), digest_of(b"b")], sender=oracle)
    assert [event.asset for event in receipt.events.filter(nft.ImageSet)] == [ETH, USDC]
    wei = nft.request(a).escrow + nft.request(c).escrow
    fees = fee_of(nft.request(a).escrow) + fee_of(nft.request(c).escrow)
    assert (nft.credit(oracle), nft.credit(owner)) == (wei - fees, fees)
    assert (nft.usdcCredit(oracle), nft.usdcCredit(owner)) == (PREMIUM - fee_of(PREMIUM), fee_of(PREMIUM))
    with ape.reverts(nft.InvalidBatch, tokenIds=2, metadataDigests=1):
        nft.setImages([a, b], [digest_of(b"a")], sender=oracle)


def test_withdraw_pays_both_assets_in_one_call(nft, stack, oracle, alice, bob, relayer):
    eth_token, usdc_token = mint(nft, stack, alice, 2), usdc_mint(nft, stack, bob, relayer, 2)
    nft.setImages([eth_token, usdc_token], [digest_of(b"e"), digest_of(b"u")], sender=oracle)
    wei, units = nft.credit(oracle), nft.usdcCredit(oracle)
    escrow = nft.request(eth_token).escrow
    assert (wei, units) == (escrow - fee_of(escrow), ULTRA - fee_of(ULTRA))
    before, usdc_before = oracle.balance, stack.usdc.balance_of(oracle.address)
    receipt = nft.withdraw(sender=oracle)
    [event] = receipt.events.filter(nft.Withdrawn)
    assert (event.account, event.recipient, event.ethAmount, event.usdcAmount) == (oracle, oracle, wei, units)
    assert oracle.balance == before + wei - receipt.total_fees_paid
    assert stack.usdc.balance_of(oracle.address) == usdc_before + units
    with ape.reverts(nft.NothingToWithdraw, account=oracle):
        nft.withdraw(sender=oracle)


def test_revoked_oracle_keeps_its_credit(nft, stack, owner, oracle, alice):
    token_id = mint(nft, stack, alice)
    nft.setImage(token_id, digest_of(b"m"), sender=oracle)
    nft.setOracle(oracle, False, sender=owner)
    assert not nft.isOracle(oracle)
    escrow = nft.request(token_id).escrow
    owed = nft.credit(oracle)
    assert owed == escrow - fee_of(escrow)
    before = oracle.balance
    receipt = nft.withdraw(sender=oracle)
    assert oracle.balance == before + owed - receipt.total_fees_paid
    with ape.reverts(nft.NothingToWithdraw, account=oracle):
        nft.withdraw(sender=oracle)
    with ape.reverts(nft.NotOracle, account=oracle):
        nft.setImage(mint(nft, stack, alice), digest_of(b"m"), sender=oracle)


# Refunds


def test_refund_exactly_at_deadline(nft, stack, alice, chain):
    token_id = mint(nft, stack, alice, tier=1)
    escrow = nft.request(token_id).escrow
    deadline = nft.request(token_id).deadline
    chain.pending_timestamp = deadline - 1
    with ape.reverts(nft.DeadlineNotReached, tokenId=token_id, deadline=deadline):
        nft.refund(token_id, sender=alice)
    chain.pending_timestamp = deadline
    before = alice.balance
    receipt = nft.refund(token_id, sender=alice)
    assert alice.balance == before + escrow - receipt.total_fees_paid
    assert nft.request(token_id).status == REFUNDED
    assert nft.balance == 0
    with ape.reverts(nft.TokenDoesNotExist):
        nft.ownerOf(token_id)
    with ape.reverts(nft.RequestNotPending, tokenId=token_id, status=REFUNDED):
        nft.refund(token_id, sender=alice)


def test_refund_after_deadline_while_paused(nft, stack, owner, alice, chain):
    token_id = mint(nft, stack, alice)
    nft.pause(sender=owner)
    chain.pending_timestamp += 2 * 3600
    nft.refund(token_id, sender=alice)
    assert nft.request(token_id).status == REFUNDED


def test_anyone_refunds_and_the_holder_is_paid_in_the_asset_paid(nft, stack, alice, bob, relayer, chain):
    """An ETH token and a USDC token, both passed on to Bob: after the deadline Alice triggers both refunds, and
    Bob receives the ETH in ETH and the USDC in USDC."""
    eth_token, usdc_token = mint(nft, stack, alice), usdc_mint(nft, stack, alice, relayer, tier=2)
    escrow = nft.request(eth_token).escrow
    for token_id in (eth_token, usdc_token):
        nft.transferFrom(alice, bob, token_id, sender=alice)
    chain.pending_timestamp += 3600
    before, usdc_before = bob.balance, stack.usdc.balance_of(bob.address)
    refunds = [nft.refund(t, sender=alice).events.filter(nft.Refunded)[0] for t in (eth_token, usdc_token)]
    assert [(e.holder, e.asset, e.amount, e.credited) for e in refunds] == [(bob, ETH, escrow, False),
                                                                           (bob, USDC, ULTRA, False)]  # fmt: skip
    assert bob.balance == before + escrow
    assert stack.usdc.balance_of(bob.address) == usdc_before + ULTRA
    assert nft.usdcLiabilities() == stack.usdc.balance_of(nft.address) == 0


def test_usdc_refund_to_a_blacklisted_holder_is_credited_and_withdrawn_elsewhere(nft, stack, alice, bob, relayer,
                                                                                 chain):  # fmt: skip
    """USDC refuses to pay a blacklisted holder: the refund still succeeds, as the holder's USDC credit, which
    withdrawTo sends to another account."""
    token_id = usdc_mint(nft, stack, alice, relayer, tier=1)
    usdc = stack.usdc
    send(usdc.w3, usdc.blacklister, usdc.token.functions.blacklist(alice.address))
    chain.pending_timestamp += 3600
    [event] = nft.refund(token_id, sender=bob).events.filter(nft.Refunded)
    assert (event.holder, event.asset, event.amount, event.credited) == (alice, USDC, PREMIUM, True)
    assert nft.usdcCredit(alice) == nft.usdcLiabilities() == PREMIUM
    before = usdc.balance_of(bob.address)
    nft.withdrawTo(bob, sender=alice)
    assert usdc.balance_of(bob.address) == before + PREMIUM
    assert nft.usdcCredit(alice) == nft.usdcLiabilities() == 0


def test_refund_after_image_reverts(nft, stack, oracle, alice, chain):
    token_id = mint(nft, stack, alice)
    nft.setImage(token_id, digest_of(b"m"), sender=oracle)
    chain.pending_timestamp += 2 * 3600
    with ape.reverts(nft.RequestNotPending, tokenId=token_id, status=FULFILLED):
        nft.refund(token_id, sender=alice)


# Consent at mint: the owner against a buyer


def test_owner_authorising_itself_before_a_mint_makes_that_mint_revert(nft, stack, owner, alice, relayer):
    """The audit's attack: the owner authorises itself just before a buyer's mint, to settle that token with
    garbage. The buyer's mint names the epoch it saw, so it reverts instead, on either rail; a buyer who mints
    after seeing the new oracle set has consented to it."""
    epoch, charged = nft.oracleEpoch(), nft.priceInWei(2)
    usdc_args = authorization(stack, alice, tier=2)
    [update] = nft.setOracle(owner, True, sender=owner).events.filter(nft.OracleUpdated)
    assert (update.oracle, update.authorised, update.oracleEpoch) == (owner, True, epoch + 1)
    assert nft.oracleEpoch() == epoch + 1
    with ape.reverts(nft.OracleSetChanged, expected=epoch, current=epoch + 1):
        nft.mint(PROMPT, 2, 0, epoch, sender=alice, value=charged)
    with ape.reverts(nft.OracleSetChanged, expected=epoch, current=epoch + 1):
        nft.mintWithAuthorization(*usdc_args, sender=relayer)
    assert nft.balance == 0 and nft.usdcLiabilities() == 0
    token_id = mint(nft, stack, alice)  # names epoch + 1: the owner is among the oracles it agrees to
    nft.setImage(token_id, digest_of(b"m"), sender=owner)
    assert nft.request(token_id).status == FULFILLED


def test_owner_cannot_drain_pending_escrow_by_becoming_an_oracle(nft, stack, owner, alice, bob, relayer):
    """The three-call drain (authorise itself, set every pending token, withdraw) fails at the second call, for
    tokens of either asset."""
    pending = [mint(nft, stack, alice, tier=2), usdc_mint(nft, stack, bob, relayer, tier=1)]
    first_later = nft.nextTokenId()
    nft.setOracle(owner, True, sender=owner)
    assert nft.servesFrom(owner) == first_later
    with ape.reverts(nft.OracleAuthorisedAfterMint, tokenId=pending[0], oracle=owner, servesFrom=first_later):
        nft.setImages(pending, [digest_of(b"garbage")] * 2, sender=owner)
    with ape.reverts(nft.OracleAuthorisedAfterMint, tokenId=pending[1], oracle=owner, servesFrom=first_later):
        nft.setImage(pending[1], digest_of(b"garbage"), sender=owner)
    with ape.reverts(nft.NothingToWithdraw, account=owner):
        nft.withdraw(sender=owner)
    assert [nft.request(t).status for t in pending] == [PENDING, PENDING]


def test_owner_cannot_withdraw_escrow(nft, stack, owner, alice, relayer):
    mint(nft, stack, alice, tier=2)
    usdc_mint(nft, stack, alice, relayer, tier=2)
    with ape.reverts(nft.NothingToWithdraw, account=owner):
        nft.withdraw(sender=owner)
    assert stack.usdc.balance_of(nft.address) == ULTRA and nft.balance == wei_at(ULTRA)


# The feed checks


def feed_updated_at(stack) -> int:
    return stack.feeds.eth_usd.functions.latestRoundData().call()[3]


def test_stale_rate_stops_eth_mints_not_usdc_mints(nft, stack, alice, relayer):
    stack.feeds.make_stale(MAX_PRICE_AGE + 1)
    updated_at = feed_updated_at(stack)
    with ape.reverts(nft.StalePrice, updatedAt=updated_at, maxAge=MAX_PRICE_AGE):
        nft.priceInWei(0)
    with ape.reverts(nft.StalePrice, updatedAt=updated_at, maxAge=MAX_PRICE_AGE):
        nft.mint(PROMPT, 0, 0, nft.oracleEpoch(), sender=alice, value=10**16)
    usdc_mint(nft, stack, alice, relayer)  # the USDC rail reads no feed
    stack.feeds.make_stale(MAX_PRICE_AGE - 10)
    mint(nft, stack, alice)


@pytest.mark.parametrize("usd_per_eth", [0, -1])
def test_non_positive_rate_reverts(nft, stack, alice, usd_per_eth):
    stack.feeds.set_price(usd_per_eth)
    with ape.reverts(nft.InvalidPrice, answer=usd_answer(usd_per_eth)):
        nft.mint(PROMPT, 0, 0, nft.oracleEpoch(), sender=alice, value=10**16)


def test_sequencer_down_or_in_grace_stops_eth_mints(nft, stack, alice):
    stack.feeds.sequencer_down()
    since = stack.feeds.sequencer.functions.latestRoundData().call()[2]
    with ape.reverts(nft.SequencerDown, since=since):
        nft.mint(PROMPT, 0, 0, nft.oracleEpoch(), sender=alice, value=10**16)
    stack.feeds.sequencer_up(since=60)
    back = stack.feeds.sequencer.functions.latestRoundData().call()[2]
    with ape.reverts(nft.SequencerGracePeriod, resumesAt=back + GRACE_PERIOD):
        nft.priceInWei(0)
    stack.feeds.sequencer_up()
    mint(nft, stack, alice)


def test_a_checked_rate_is_reused_for_a_minute(nft, stack, alice, chain):
    mint(nft, stack, alice)  # reads and caches $3000
    stack.feeds.set_price(2000)
    assert nft.priceInWei(0) == wei_at(BASIC)
    chain.mine(deltatime=61)
    assert nft.priceInWei(0) == wei_at(BASIC, 2000)


def test_max_price_age_is_bounded(nft, stack, owner, alice):
    with ape.reverts(nft.PriceAgeOutOfRange, maxAge=59, minAge=60, maxAllowed=86_400):
        nft.setMaxPriceAge(59, sender=owner)
    assert nft.setMaxPriceAge(600, sender=owner).events.filter(nft.MaxPriceAgeUpdated)[0].maxPriceAge == 600
    stack.feeds.make_stale(601)
    with ape.reverts(nft.StalePrice, updatedAt=feed_updated_at(stack), maxAge=600):
        nft.priceInWei(0)


# Owner settings and ERC-721


def test_price_must_fit_32_bits_of_dollars(nft, owner):
    max_price = nft.MAX_PRICE()
    assert max_price == 2**32 - 1
    nft.setPrice(2, max_price, sender=owner)
    assert nft.price(2) == max_price and nft.priceInWei(2) == wei_at(max_price)
    with ape.reverts(nft.UnrepresentablePrice, price=max_price + 1, maxPrice=max_price):
        nft.setPrice(0, max_price + 1, sender=owner)


def test_settings_are_bounded_and_emit_events(nft, owner, alice):
    receipt = nft.setFee(2000, sender=owner)
    assert receipt.events.filter(nft.FeeUpdated)[0].feeBps == 2000
    with ape.reverts(nft.FeeTooHigh, feeBps=2001, maxFeeBps=2000):
        nft.setFee(2001, sender=owner)
    assert nft.setTimeout(300, sender=owner).events.filter(nft.TimeoutUpdated)[0].timeout == 300
    with ape.reverts(nft.TimeoutOutOfRange):
        nft.setTimeout(299, sender=owner)
    [event] = nft.setOracle(alice, True, sender=owner).events.filter(nft.OracleUpdated)
    assert event.authorised and event.servesFrom == nft.nextTokenId()
    assert nft.setPrice(0, 2 * BASIC, sender=owner).events.filter(nft.PriceUpdated)[0].usdPrice == 2 * BASIC
    assert nft.setContractURI("ipfs://c", sender=owner).events.filter(nft.ContractURIUpdated)
    assert nft.contractURI() == "ipfs://c"
    assert nft.setDefaultRoyalty(owner, 250, sender=owner).events.filter(nft.DefaultRoyaltyUpdated)
    assert nft.royaltyInfo(1, 10**18) == (owner, 25 * 10**15)
    with ape.reverts(nft.OwnableUnauthorizedAccount, account=alice):
        nft.setFee(1, sender=alice)


def test_two_step_ownership_and_no_renounce(nft, owner, bob):
    nft.transferOwnership(bob, sender=owner)
    assert nft.owner() == owner
    nft.acceptOwnership(sender=bob)
    assert nft.owner() == bob
    with ape.reverts(nft.RenounceDisabled):
        nft.renounceOwnership(sender=bob)


def test_supports_interfaces(nft):
    for interface_id in ("0x01ffc9a7", "0x80ac58cd", "0x5b5e139f", "0x49064906", "0x2a55205a"):
        assert nft.supportsInterface(interface_id)
    assert not nft.supportsInterface("0xdeadbeef")


def test_erc721_calls_refuse_ether(nft, stack, alice, bob):
    token_id = mint(nft, stack, alice)
    with ape.reverts(nft.EtherNotAccepted, value=1):
        nft.transferFrom(alice, bob, token_id, sender=alice, value=1)
    with ape.reverts(nft.EtherNotAccepted, value=2):
        nft.approve(bob, token_id, sender=alice, value=2)
    nft.transferFrom(alice, bob, token_id, sender=alice)
    assert nft.ownerOf(token_id) == bob
