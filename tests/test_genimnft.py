"""GenImNFT through Ape: every external function and revert path, on the in-process chain and on anvil."""

from __future__ import annotations

import hashlib

import ape
import pytest
from multiformats import CID, multihash

from tests.conftest import BASIC, FEE_BPS, PREMIUM, ULTRA

PENDING, FULFILLED, REFUNDED = 1, 2, 3
PROMPT = "a lighthouse on a basalt cliff at dawn"


def fee_of(amount: int) -> int:
    return amount * FEE_BPS // 10_000


def mint(nft, who, tier: int = 0, prompt: str = PROMPT, extra: int = 0, aspect: int = 0) -> int:
    receipt = nft.mint(prompt, tier, aspect, sender=who, value=nft.price(tier) + extra)
    return receipt.events.filter(nft.ImageRequested)[0].tokenId


def digest_of(metadata: bytes) -> bytes:
    return hashlib.sha256(metadata).digest()


def test_mint_binds_prompt_and_escrows_price(nft, alice, chain):
    token_id = nft.nextTokenId()
    receipt = nft.mint(PROMPT, 1, 2, sender=alice, value=PREMIUM)
    [event] = receipt.events.filter(nft.ImageRequested)
    assert event.tokenId == token_id and event.requester == alice
    assert nft.nextTokenId() == token_id + 1
    assert event.prompt == PROMPT and event.tier == 1 and event.aspect == 2 and event.escrow == PREMIUM
    status, tier, aspect, deadline, escrow, digest = nft.request(token_id)
    assert (status, tier, aspect, escrow) == (PENDING, 1, 2, PREMIUM)
    assert deadline == chain.blocks.head.timestamp + 3600
    assert digest == b"\x00" * 32
    assert nft.ownerOf(token_id) == alice
    assert nft.balance == PREMIUM


def test_excess_is_refunded(nft, alice):
    before = alice.balance
    receipt = nft.mint(PROMPT, 0, 0, sender=alice, value=BASIC + 12345)
    assert alice.balance == before - BASIC - receipt.total_fees_paid
    assert nft.balance == BASIC


def test_short_payment_reverts(nft, alice):
    with ape.reverts(nft.InsufficientPayment, tier=2, price=ULTRA, paid=ULTRA - 1):
        nft.mint(PROMPT, 2, 0, sender=alice, value=ULTRA - 1)


@pytest.mark.parametrize("prompt", ["", "x" * 1001, "é" * 501])
def test_bad_prompt_reverts_with_named_error(nft, alice, prompt):
    if prompt:
        with ape.reverts(nft.PromptTooLong, length=len(prompt.encode()), maxLength=1000):
            nft.mint(prompt, 0, 0, sender=alice, value=BASIC)
    else:
        with ape.reverts(nft.EmptyPrompt):
            nft.mint(prompt, 0, 0, sender=alice, value=BASIC)


def test_prompt_of_exactly_1000_bytes_is_accepted(nft, alice):
    prompt = "ü" * 500  # 1000 bytes of UTF-8
    receipt = nft.mint(prompt, 0, 0, sender=alice, value=BASIC)
    assert receipt.events.filter(nft.ImageRequested)[0].prompt == prompt


def test_paused_mint_reverts_and_unpause_restores(nft, owner, alice):
    nft.pause(sender=owner)
    assert nft.paused()
    with ape.reverts(nft.MintingIsPaused):
        nft.mint(PROMPT, 0, 0, sender=alice, value=BASIC)
    nft.unpause(sender=owner)
    mint(nft, alice)


def test_unknown_and_disabled_tiers_revert(nft, owner, alice):
    with ape.reverts(nft.UnknownTier, tier=3):
        nft.mint(PROMPT, 3, 0, sender=alice, value=BASIC)
    nft.setPrice(1, 0, sender=owner)
    with ape.reverts(nft.TierDisabled, tier=1):
        nft.mint(PROMPT, 1, 0, sender=alice, value=PREMIUM)


def test_set_image_credits_oracle_and_fee(nft, owner, oracle, alice):
    token_id = mint(nft, alice, tier=2)
    metadata = b'{"name":"GenImNFT #1"}'
    receipt = nft.setImage(token_id, digest_of(metadata), sender=oracle)
    [event] = receipt.events.filter(nft.ImageSet)
    assert event.payment == ULTRA - fee_of(ULTRA) and event.fee == fee_of(ULTRA)
    assert receipt.events.filter(nft.MetadataUpdate)[0]._tokenId == token_id
    assert nft.request(token_id).status == FULFILLED
    assert nft.credit(oracle) == ULTRA - fee_of(ULTRA)
    assert nft.credit(owner) == fee_of(ULTRA)


def test_token_uri_is_the_cid_multiformats_computes(nft, owner, oracle, alice):
    nft.setPlaceholderURI("ipfs://placeholder", sender=owner)
    token_id = mint(nft, alice)
    assert nft.tokenURI(token_id) == "ipfs://placeholder"
    metadata = b'{"name":"GenImNFT #1","description":"a lighthouse"}'
    nft.setImage(token_id, digest_of(metadata), sender=oracle)
    expected = CID("base32", 1, "raw", multihash.digest(metadata, "sha2-256"))
    assert nft.tokenURI(token_id) == f"ipfs://{expected}"
    assert str(expected).startswith("bafkrei")


def test_second_set_image_reverts(nft, oracle, alice):
    token_id = mint(nft, alice)
    first = digest_of(b"first")
    nft.setImage(token_id, first, sender=oracle)
    with ape.reverts(nft.ImageAlreadySet, tokenId=token_id, metadataDigest=first):
        nft.setImage(token_id, digest_of(b"second"), sender=oracle)


def test_non_oracle_reverts(nft, alice, bob):
    token_id = mint(nft, alice)
    with ape.reverts(nft.NotOracle, account=bob):
        nft.setImage(token_id, digest_of(b"m"), sender=bob)


def test_set_image_after_deadline_reverts(nft, oracle, alice, chain):
    token_id = mint(nft, alice)
    deadline = nft.request(token_id).deadline
    chain.pending_timestamp = deadline
    with ape.reverts(nft.DeadlinePassed, tokenId=token_id, deadline=deadline):
        nft.setImage(token_id, digest_of(b"late"), sender=oracle)


def test_zero_digest_and_unknown_token_revert(nft, oracle, alice):
    token_id = mint(nft, alice)
    with ape.reverts(nft.InvalidDigest, tokenId=token_id):
        nft.setImage(token_id, b"\x00" * 32, sender=oracle)
    with ape.reverts(nft.RequestNotPending, tokenId=999, status=0):
        nft.setImage(999, digest_of(b"m"), sender=oracle)


def test_set_images_batch_all_or_nothing(nft, owner, oracle, alice, bob):
    a, b, c = mint(nft, alice, 0), mint(nft, bob, 1), mint(nft, alice, 2)
    nft.setImage(c, digest_of(b"c"), sender=oracle)
    with ape.reverts(nft.ImageAlreadySet):
        nft.setImages([a, b, c], [digest_of(b"a"), digest_of(b"b"), digest_of(b"c2")], sender=oracle)
    assert nft.request(a).status == PENDING
    receipt = nft.setImages([a, b], [digest_of(b"a"), digest_of(b"b")], sender=oracle)
    assert len(receipt.events.filter(nft.ImageSet)) == 2
    paid = BASIC + PREMIUM + ULTRA
    fees = fee_of(BASIC) + fee_of(PREMIUM) + fee_of(ULTRA)
    assert nft.credit(oracle) == paid - fees
    assert nft.credit(owner) == fees
    with ape.reverts(nft.InvalidBatch, tokenIds=2, metadataDigests=1):
        nft.setImages([a, b], [digest_of(b"a")], sender=oracle)


def test_refund_exactly_at_deadline(nft, alice, chain):
    token_id = mint(nft, alice, tier=1)
    deadline = nft.request(token_id).deadline
    chain.pending_timestamp = deadline - 1
    with ape.reverts(nft.DeadlineNotReached, tokenId=token_id, deadline=deadline):
        nft.refund(token_id, sender=alice)
    chain.pending_timestamp = deadline
    before = alice.balance
    receipt = nft.refund(token_id, sender=alice)
    assert alice.balance == before + PREMIUM - receipt.total_fees_paid
    assert nft.request(token_id).status == REFUNDED
    assert nft.balance == 0
    with ape.reverts(nft.TokenDoesNotExist):
        nft.ownerOf(token_id)
    with ape.reverts(nft.RequestNotPending, tokenId=token_id, status=REFUNDED):
        nft.refund(token_id, sender=alice)


def test_refund_after_deadline_while_paused(nft, owner, alice, chain):
    token_id = mint(nft, alice)
    nft.pause(sender=owner)
    chain.pending_timestamp += 2 * 3600
    nft.refund(token_id, sender=alice)
    assert nft.request(token_id).status == REFUNDED


def test_anyone_refunds_and_the_holder_is_paid(nft, alice, bob, chain):
    token_id = mint(nft, alice)
    nft.transferFrom(alice, bob, token_id, sender=alice)
    chain.pending_timestamp += 3600
    before = bob.balance
    receipt = nft.refund(token_id, sender=alice)  # the former holder triggers it; the holder is paid
    assert bob.balance == before + BASIC
    [event] = receipt.events.filter(nft.Refunded)
    assert (event.holder, event.amount, event.credited) == (bob, BASIC, False)


def test_unknown_aspect_reverts_before_payment(nft, alice):
    before = nft.balance
    with ape.reverts(nft.UnknownAspect, aspect=4):
        nft.mint(PROMPT, 0, 4, sender=alice, value=BASIC)
    assert nft.balance == before


def test_owner_cannot_drain_pending_escrow_by_becoming_an_oracle(nft, owner, alice, bob):
    """The three-call drain (authorise itself, set every pending token, withdraw) fails at the second call."""
    pending = [mint(nft, alice, tier=2), mint(nft, bob, tier=1)]
    first_later = nft.nextTokenId()
    nft.setOracle(owner, True, sender=owner)
    assert nft.servesFrom(owner) == first_later
    with ape.reverts(nft.OracleAuthorisedAfterMint, tokenId=pending[0], oracle=owner, servesFrom=first_later):
        nft.setImages(pending, [digest_of(b"garbage")] * 2, sender=owner)
    with ape.reverts(nft.NothingToWithdraw, account=owner):
        nft.withdraw(sender=owner)
    assert [nft.request(t).status for t in pending] == [PENDING, PENDING]


def test_refund_after_image_reverts(nft, oracle, alice, chain):
    token_id = mint(nft, alice)
    nft.setImage(token_id, digest_of(b"m"), sender=oracle)
    chain.pending_timestamp += 2 * 3600
    with ape.reverts(nft.RequestNotPending, tokenId=token_id, status=FULFILLED):
        nft.refund(token_id, sender=alice)


def test_revoked_oracle_keeps_its_credit(nft, owner, oracle, alice):
    token_id = mint(nft, alice)
    nft.setImage(token_id, digest_of(b"m"), sender=oracle)
    nft.setOracle(oracle, False, sender=owner)
    assert not nft.isOracle(oracle)
    owed = nft.credit(oracle)
    assert owed == BASIC - fee_of(BASIC)
    before = oracle.balance
    receipt = nft.withdraw(sender=oracle)
    assert oracle.balance == before + owed - receipt.total_fees_paid
    with ape.reverts(nft.NothingToWithdraw, account=oracle):
        nft.withdraw(sender=oracle)
    with ape.reverts(nft.NotOracle, account=oracle):
        nft.setImage(mint(nft, alice), digest_of(b"m"), sender=oracle)


def test_owner_cannot_withdraw_escrow(nft, owner, alice):
    mint(nft, alice, tier=2)
    with ape.reverts(nft.NothingToWithdraw, account=owner):
        nft.withdraw(sender=owner)
    assert nft.balance == ULTRA


def test_price_must_fit_the_packed_escrow(nft, owner):
    max_price = nft.MAX_PRICE()
    assert max_price == (2**48 - 1) * 10**9
    nft.setPrice(2, max_price, sender=owner)
    assert nft.price(2) == max_price
    for bad in (max_price + 10**9, 10**9 + 1):
        with ape.reverts(nft.UnrepresentablePrice, price=bad, maxPrice=max_price):
            nft.setPrice(0, bad, sender=owner)


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
    assert nft.setPrice(0, 2 * BASIC, sender=owner).events.filter(nft.PriceUpdated)[0].price == 2 * BASIC
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


def test_erc721_calls_refuse_ether(nft, alice, bob):
    token_id = mint(nft, alice)
    with ape.reverts(nft.EtherNotAccepted, value=1):
        nft.transferFrom(alice, bob, token_id, sender=alice, value=1)
    with ape.reverts(nft.EtherNotAccepted, value=2):
        nft.approve(bob, token_id, sender=alice, value=2)
    nft.transferFrom(alice, bob, token_id, sender=alice)
    assert nft.ownerOf(token_id) == bob
