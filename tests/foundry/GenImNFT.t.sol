// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC721} from "solady/tokens/ERC721.sol";
import {GenImNFT} from "../../contracts/GenImNFT.sol";
import {Test} from "./utils/Test.sol";

/// @dev Refuses ether: a minter that cannot take its excess back, or a holder that cannot take a refund.
contract EtherRefuser {
    function mint(GenImNFT nft, string calldata prompt, uint8 tier) external payable returns (uint256) {
        return nft.mint{value: msg.value}(prompt, tier, 0);
    }
}

contract GenImNFTTest is Test {
    GenImNFT internal nft;
    address internal owner = vm.addr(1);
    address internal oracle = vm.addr(2);
    address internal alice = vm.addr(3);
    address internal bob = vm.addr(4);

    uint256 internal constant BASIC = 0.001 ether;
    uint256 internal constant PREMIUM = 0.004 ether;
    uint256 internal constant ULTRA = 0.016 ether;
    uint16 internal constant FEE_BPS = 500;
    // Any non-zero digest; keccak256 is an opcode, so it does not consume a prank (sha256 is a call).
    bytes32 internal constant DIGEST = keccak256("metadata #1");

    function setUp() public {
        address[] memory oracles = new address[](1);
        oracles[0] = oracle;
        nft = new GenImNFT(owner, [BASIC, PREMIUM, ULTRA], FEE_BPS, oracles);
        vm.deal(alice, 100 ether);
        vm.deal(bob, 100 ether);
    }

    function _mint(address who, uint8 tier) internal returns (uint256) {
        uint256 paid = nft.price(tier);
        vm.prank(who);
        return nft.mint{value: paid}("a lighthouse at dawn", tier, 0);
    }

    /*//////////////////////////////////////////////////////////////
                                  MINT
    //////////////////////////////////////////////////////////////*/

    function test_MintHoldsPriceInEscrow() public {
        uint256 id = _mint(alice, 1);
        GenImNFT.Request memory r = nft.request(id);
        vm.assertEq(id, 1, "first id");
        vm.assertEq(nft.ownerOf(id), alice, "holder");
        vm.assertEq(uint256(r.status), uint256(GenImNFT.Status.Pending), "status");
        vm.assertEq(r.tier, 1, "tier");
        vm.assertEq(r.aspect, 0, "aspect");
        vm.assertEq(r.escrow, PREMIUM, "escrow");
        vm.assertEq(r.deadline, block.timestamp + 1 hours, "deadline");
        vm.assertEq(address(nft).balance, PREMIUM, "balance");
        vm.assertEq(nft.nextTokenId(), 2, "next id");
    }

    function test_MintEmitsPromptBoundOnChain() public {
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.ImageRequested(1, alice, 0, 0, BASIC, uint40(block.timestamp + 1 hours), "a red fox");
        vm.prank(alice);
        nft.mint{value: BASIC}("a red fox", 0, 0);
    }

    function testFuzz_AspectBoundAtMint(uint8 aspect) public {
        uint8 count = nft.ASPECT_COUNT();
        vm.prank(alice);
        if (aspect >= count) {
            vm.expectRevert(abi.encodeWithSelector(GenImNFT.UnknownAspect.selector, aspect));
            nft.mint{value: PREMIUM}("a wide harbour", 1, aspect);
            vm.assertEq(address(nft).balance, 0, "no payment taken");
            vm.assertEq(nft.nextTokenId(), 1, "nothing minted");
            return;
        }
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.ImageRequested(1, alice, 1, aspect, PREMIUM, uint40(block.timestamp + 1 hours), "a wide harbour");
        uint256 id = nft.mint{value: PREMIUM}("a wide harbour", 1, aspect);
        GenImNFT.Request memory r = nft.request(id);
        vm.assertEq(r.aspect, aspect, "aspect stored");
        vm.assertEq(r.tier, 1, "tier beside it");
        vm.assertEq(r.escrow, PREMIUM, "escrow beside it");
    }

    /// With a timestamp near 2**40, now + timeout does not fit the deadline's 40 bits. Unmasked, the carry
    /// would land in the escrow field and the token would be worth twice its price at refund; masked, the
    /// deadline wraps, the escrow and tier stay exact, and the books balance.
    function test_DeadlineCarryNeverReachesEscrow() public {
        uint256 timeout = nft.timeout();
        vm.warp((uint256(1) << 40) - timeout + 5); // now + timeout = 2**40 + 5
        uint256 id = _mint(alice, 2);
        GenImNFT.Request memory r = nft.request(id);
        vm.assertEq(r.deadline, 5, "deadline wrapped to its 40 bits");
        vm.assertEq(r.escrow, ULTRA, "escrow intact");
        vm.assertEq(r.tier, 2, "tier intact");
        vm.assertEq(r.aspect, 0, "aspect intact");
        uint256 before = alice.balance;
        vm.prank(alice);
        nft.refund(id);
        vm.assertEq(alice.balance, before + ULTRA, "refund is the price paid, not more");
        vm.assertEq(address(nft).balance, 0, "books balance");
    }

    function testFuzz_MintReturnsExcess(uint256 paid) public {
        paid = bound(paid, BASIC, 50 ether);
        uint256 before = alice.balance;
        vm.prank(alice);
        nft.mint{value: paid}("p", 0, 0);
        vm.assertEq(alice.balance, before - BASIC, "only the price is kept");
        vm.assertEq(address(nft).balance, BASIC, "escrow");
    }

    function testFuzz_RevertWhen_PaymentShort(uint256 paid) public {
        paid = bound(paid, 0, PREMIUM - 1);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.InsufficientPayment.selector, uint8(1), PREMIUM, paid));
        vm.prank(alice);
        nft.mint{value: paid}("p", 1, 0);
    }

    function testFuzz_PromptLengthBound(uint256 length) public {
        length = bound(length, 0, 1200);
        string memory prompt = string(new bytes(length));
        if (length == 0) {
            vm.expectRevert(GenImNFT.EmptyPrompt.selector);
        } else if (length > 1000) {
            vm.expectRevert(abi.encodeWithSelector(GenImNFT.PromptTooLong.selector, length, uint256(1000)));
        }
        vm.prank(alice);
        nft.mint{value: BASIC}(prompt, 0, 0);
    }

    function test_RevertWhen_MintPaused() public {
        vm.prank(owner);
        nft.pause();
        vm.expectRevert(GenImNFT.MintingIsPaused.selector);
        vm.prank(alice);
        nft.mint{value: BASIC}("p", 0, 0);
        vm.prank(owner);
        nft.unpause();
        _mint(alice, 0);
    }

    function test_RevertWhen_TierUnknownOrDisabled() public {
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.UnknownTier.selector, uint8(3)));
        vm.prank(alice);
        nft.mint{value: BASIC}("p", 3, 0);
        vm.prank(owner);
        nft.setPrice(2, 0);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.TierDisabled.selector, uint8(2)));
        vm.prank(alice);
        nft.mint{value: ULTRA}("p", 2, 0);
    }

    function test_RevertWhen_ExcessCannotBeReturned() public {
        EtherRefuser refuser = new EtherRefuser();
        vm.deal(address(refuser), 1 ether);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.TransferFailed.selector, address(refuser), 1));
        vm.prank(alice);
        refuser.mint{value: BASIC + 1}(nft, "p", 0);
    }

    function test_RequestTermsStayAfterSettingsChange() public {
        uint256 id = _mint(alice, 0);
        vm.startPrank(owner);
        nft.setPrice(0, 2 * BASIC);
        nft.setTimeout(2 days);
        vm.stopPrank();
        GenImNFT.Request memory r = nft.request(id);
        vm.assertEq(r.escrow, BASIC, "escrow fixed at mint");
        vm.assertEq(r.deadline, block.timestamp + 1 hours, "deadline fixed at mint");
    }

    /*//////////////////////////////////////////////////////////////
                                SET IMAGE
    //////////////////////////////////////////////////////////////*/

    function test_SetImagePaysOracleFromEscrow() public {
        uint256 id = _mint(alice, 2);
        vm.expectEmit(true, true, false, true);
        emit GenImNFT.ImageSet(id, oracle, DIGEST, ULTRA - ULTRA * FEE_BPS / 10_000, ULTRA * FEE_BPS / 10_000);
        vm.expectEmit(false, false, false, true);
        emit GenImNFT.MetadataUpdate(id);
        vm.prank(oracle);
        nft.setImage(id, DIGEST);
        GenImNFT.Request memory r = nft.request(id);
        vm.assertEq(uint256(r.status), uint256(GenImNFT.Status.Fulfilled), "fulfilled");
        vm.assertEq(r.metadataDigest, DIGEST, "digest");
        vm.assertEq(nft.credit(oracle), ULTRA - ULTRA * FEE_BPS / 10_000, "oracle credit");
        vm.assertEq(nft.credit(owner), ULTRA * FEE_BPS / 10_000, "fee");
    }

    function test_TokenURIIsPlaceholderThenCid() public {
        vm.prank(owner);
        nft.setPlaceholderURI("ipfs://placeholder");
        uint256 id = _mint(alice, 0);
        vm.assertEq(nft.tokenURI(id), "ipfs://placeholder", "pending");
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.InvalidDigest.selector, id));
        vm.prank(oracle);
        nft.setImage(id, bytes32(0));
        // The well-known CIDv1 (raw, sha2-256) of the empty byte string.
        bytes32 emptyDigest = sha256("");
        vm.prank(oracle);
        nft.setImage(id, emptyDigest);
        vm.assertEq(
            nft.tokenURI(id), "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", "cid of empty bytes"
        );
    }

    function test_RevertWhen_SecondSetImage() public {
        uint256 id = _mint(alice, 0);
        vm.prank(oracle);
        nft.setImage(id, DIGEST);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.ImageAlreadySet.selector, id, DIGEST));
        vm.prank(oracle);
        nft.setImage(id, keccak256("other"));
    }

    function test_RevertWhen_NotOracle() public {
        uint256 id = _mint(alice, 0);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.NotOracle.selector, bob));
        vm.prank(bob);
        nft.setImage(id, DIGEST);
    }

    function test_RevertWhen_SetImageAtDeadline() public {
        uint256 id = _mint(alice, 0);
        uint256 deadline = nft.request(id).deadline;
        vm.warp(deadline);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.DeadlinePassed.selector, id, deadline));
        vm.prank(oracle);
        nft.setImage(id, DIGEST);
    }

    function test_RevertWhen_SetImageOnUnknownOrRefunded() public {
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.RequestNotPending.selector, 7, GenImNFT.Status.None));
        vm.prank(oracle);
        nft.setImage(7, DIGEST);
        uint256 id = _mint(alice, 0);
        vm.warp(block.timestamp + 1 hours);
        vm.prank(alice);
        nft.refund(id);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.RequestNotPending.selector, id, GenImNFT.Status.Refunded));
        vm.prank(oracle);
        nft.setImage(id, DIGEST);
    }

    function test_SetImagesIsAllOrNothing() public {
        uint256 a = _mint(alice, 0);
        uint256 b = _mint(bob, 1);
        uint256[] memory ids = new uint256[](2);
        bytes32[] memory digests = new bytes32[](2);
        (ids[0], ids[1]) = (a, b);
        (digests[0], digests[1]) = (DIGEST, DIGEST);
        vm.prank(oracle);
        nft.setImage(b, DIGEST);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.ImageAlreadySet.selector, b, DIGEST));
        vm.prank(oracle);
        nft.setImages(ids, digests);
        vm.assertEq(uint256(nft.request(a).status), uint256(GenImNFT.Status.Pending), "a untouched");

        ids = new uint256[](1);
        digests = new bytes32[](1);
        ids[0] = a;
        digests[0] = DIGEST;
        vm.prank(oracle);
        nft.setImages(ids, digests);
        uint256 fees = BASIC * FEE_BPS / 10_000 + PREMIUM * FEE_BPS / 10_000;
        vm.assertEq(nft.credit(oracle), BASIC + PREMIUM - fees, "both paid");
        vm.assertEq(nft.credit(owner), fees, "both fees");
    }

    function test_RevertWhen_SetImagesBatchMalformed() public {
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.InvalidBatch.selector, 0, 0));
        vm.prank(oracle);
        nft.setImages(new uint256[](0), new bytes32[](0));
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.InvalidBatch.selector, 2, 1));
        vm.prank(oracle);
        nft.setImages(new uint256[](2), new bytes32[](1));
    }

    function test_RevokedOracleKeepsCredit() public {
        uint256 id = _mint(alice, 0);
        vm.prank(oracle);
        nft.setImage(id, DIGEST);
        vm.prank(owner);
        nft.setOracle(oracle, false);
        vm.assertFalse(nft.isOracle(oracle), "revoked");
        uint256 owed = nft.credit(oracle);
        vm.assertEq(owed, BASIC - BASIC * FEE_BPS / 10_000, "credit kept");
        uint256 before = oracle.balance;
        vm.prank(oracle);
        nft.withdraw();
        vm.assertEq(oracle.balance, before + owed, "withdrawn");
        uint256 next = _mint(alice, 0);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.NotOracle.selector, oracle));
        vm.prank(oracle);
        nft.setImage(next, DIGEST);
    }

    /*//////////////////////////////////////////////////////////////
                            CONSENT AT MINT
    //////////////////////////////////////////////////////////////*/

    /// The drain an owner could do before consent at mint: authorise itself, set every pending token with any
    /// digest, withdraw the escrow. Each step that reaches a buyer's token now reverts, and the escrow stays.
    function test_RevertWhen_OwnerDrainsPendingEscrow() public {
        uint256 a = _mint(alice, 2);
        uint256 b = _mint(bob, 1);
        vm.startPrank(owner);
        nft.setOracle(owner, true);
        vm.assertEq(nft.servesFrom(owner), 3, "owner serves only later tokens");
        uint256[] memory ids = new uint256[](2);
        (ids[0], ids[1]) = (a, b);
        bytes32[] memory digests = new bytes32[](2);
        (digests[0], digests[1]) = (DIGEST, DIGEST);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.OracleAuthorisedAfterMint.selector, a, owner, 3));
        nft.setImages(ids, digests);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.OracleAuthorisedAfterMint.selector, b, owner, 3));
        nft.setImage(b, DIGEST);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.NothingToWithdraw.selector, owner));
        nft.withdraw();
        vm.stopPrank();
        vm.assertEq(address(nft).balance, ULTRA + PREMIUM, "escrow stays");
        vm.assertEq(uint256(nft.request(a).status), uint256(GenImNFT.Status.Pending), "a pending");
        vm.warp(block.timestamp + 1 hours);
        uint256 before = alice.balance;
        vm.prank(alice);
        nft.refund(a);
        vm.assertEq(alice.balance, before + ULTRA, "buyer refunded");
    }

    function test_OracleAuthorisedLaterServesOnlyLaterMints() public {
        address operator = vm.addr(9);
        uint256 before_ = _mint(alice, 0);
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.OracleUpdated(operator, true, 2);
        vm.prank(owner);
        nft.setOracle(operator, true);
        uint256 after_ = _mint(bob, 0);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.OracleAuthorisedAfterMint.selector, before_, operator, 2));
        vm.prank(operator);
        nft.setImage(before_, DIGEST);
        vm.prank(operator);
        nft.setImage(after_, DIGEST);
        vm.prank(oracle); // authorised since the constructor: consented to by both buyers
        nft.setImage(before_, DIGEST);
        // Authorising again while authorised changes nothing.
        vm.prank(owner);
        nft.setOracle(operator, true);
        vm.assertEq(nft.servesFrom(operator), 2, "unchanged");
    }

    /// Revoking takes effect at once; authorising again starts from the next token, so tokens minted while
    /// the oracle was revoked (or before) are out of its reach.
    function test_ReauthorisedOracleStartsAfresh() public {
        uint256 first = _mint(alice, 0);
        vm.prank(owner);
        nft.setOracle(oracle, false);
        vm.assertEq(nft.servesFrom(oracle), 0, "revoked");
        uint256 whileRevoked = _mint(alice, 0);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.NotOracle.selector, oracle));
        vm.prank(oracle);
        nft.setImage(first, DIGEST);
        vm.prank(owner);
        nft.setOracle(oracle, true);
        uint256 later = _mint(bob, 0);
        vm.assertEq(nft.servesFrom(oracle), later, "serves from the next token");
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.OracleAuthorisedAfterMint.selector, first, oracle, later));
        vm.prank(oracle);
        nft.setImage(first, DIGEST);
        vm.expectRevert(
            abi.encodeWithSelector(GenImNFT.OracleAuthorisedAfterMint.selector, whileRevoked, oracle, later)
        );
        vm.prank(oracle);
        nft.setImage(whileRevoked, DIGEST);
        vm.prank(oracle);
        nft.setImage(later, DIGEST);
    }

    /// Credit and consent share one slot: earning, revoking, re-authorising and withdrawing keep both exact.
    function test_CreditSurvivesConsentChanges() public {
        uint256 id = _mint(alice, 2);
        vm.prank(oracle);
        nft.setImage(id, DIGEST);
        uint256 owed = ULTRA - ULTRA * FEE_BPS / 10_000;
        vm.startPrank(owner);
        nft.setOracle(oracle, false);
        nft.setOracle(oracle, true);
        vm.stopPrank();
        vm.assertEq(nft.credit(oracle), owed, "credit kept through revoke and re-authorise");
        vm.assertEq(nft.servesFrom(oracle), 2, "consent from the next token");
        vm.prank(oracle);
        nft.withdraw();
        vm.assertEq(nft.credit(oracle), 0, "withdrawn");
        vm.assertEq(nft.servesFrom(oracle), 2, "withdraw keeps consent");
        vm.assertTrue(nft.isOracle(oracle), "withdraw keeps authorisation");
    }

    /*//////////////////////////////////////////////////////////////
                                 REFUND
    //////////////////////////////////////////////////////////////*/

    function test_RefundExactlyAtDeadline() public {
        uint256 id = _mint(alice, 1);
        uint256 deadline = nft.request(id).deadline;
        vm.warp(deadline - 1);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.DeadlineNotReached.selector, id, deadline));
        vm.prank(alice);
        nft.refund(id);
        vm.warp(deadline);
        uint256 before = alice.balance;
        vm.prank(alice);
        nft.refund(id);
        vm.assertEq(alice.balance, before + PREMIUM, "escrow back");
        vm.assertEq(address(nft).balance, 0, "nothing left");
        vm.assertEq(uint256(nft.request(id).status), uint256(GenImNFT.Status.Refunded), "refunded");
        vm.expectRevert(ERC721.TokenDoesNotExist.selector);
        nft.ownerOf(id);
    }

    /// Anyone may trigger a refund after the deadline (the former holder here); it always pays the holder.
    function test_RefundPaysCurrentHolder() public {
        uint256 id = _mint(alice, 0);
        vm.prank(alice);
        nft.transferFrom(alice, bob, id);
        vm.warp(block.timestamp + 2 hours);
        uint256 aliceBefore = alice.balance;
        uint256 bobBefore = bob.balance;
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.Refunded(id, bob, BASIC, false);
        vm.prank(alice);
        nft.refund(id);
        vm.assertEq(bob.balance, bobBefore + BASIC, "holder paid");
        vm.assertEq(alice.balance, aliceBefore, "caller not paid");
    }

    /// A holder that refuses ether cannot block its refund: the escrow becomes its credit.
    function test_RefundToRejectingHolderIsCredited() public {
        EtherRefuser refuser = new EtherRefuser();
        uint256 id = _mint(alice, 1);
        vm.prank(alice);
        nft.transferFrom(alice, address(refuser), id);
        vm.warp(block.timestamp + 1 hours);
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.Refunded(id, address(refuser), PREMIUM, true);
        vm.prank(bob);
        nft.refund(id);
        vm.assertEq(uint256(nft.request(id).status), uint256(GenImNFT.Status.Refunded), "refunded");
        vm.assertEq(nft.credit(address(refuser)), PREMIUM, "credited");
        vm.assertEq(address(nft).balance, PREMIUM, "still held for the holder");
        vm.assertFalse(nft.isOracle(address(refuser)), "credit is not authorisation");
        // It still refuses ether, so withdrawing fails and keeps the credit.
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.TransferFailed.selector, address(refuser), PREMIUM));
        vm.prank(address(refuser));
        nft.withdraw();
        vm.assertEq(nft.credit(address(refuser)), PREMIUM, "credit kept");
    }

    /// A token sent to the NFT contract itself: nobody holds a key to it, yet its refund lands (as the
    /// contract's own credit, which no one can withdraw) and the books stay exact.
    function test_RefundOfTokenHeldByTheContractItself() public {
        uint256 id = _mint(alice, 2);
        vm.prank(alice);
        nft.transferFrom(alice, address(nft), id);
        vm.warp(block.timestamp + 1 hours);
        vm.prank(bob);
        nft.refund(id);
        vm.assertEq(uint256(nft.request(id).status), uint256(GenImNFT.Status.Refunded), "refunded");
        vm.assertEq(nft.credit(address(nft)), ULTRA, "credited to the holder, the contract");
        vm.assertEq(address(nft).balance, ULTRA, "balance matches the credit");
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.NothingToWithdraw.selector, owner));
        nft.withdraw();
    }

    function test_RefundWorksWhilePaused() public {
        uint256 id = _mint(alice, 0);
        vm.prank(owner);
        nft.pause();
        vm.warp(block.timestamp + 1 hours);
        vm.prank(alice);
        nft.refund(id);
    }

    function test_RevertWhen_RefundAfterImage() public {
        uint256 id = _mint(alice, 0);
        vm.prank(oracle);
        nft.setImage(id, DIGEST);
        vm.warp(block.timestamp + 1 days);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.RequestNotPending.selector, id, GenImNFT.Status.Fulfilled));
        vm.prank(alice);
        nft.refund(id);
    }

    /*//////////////////////////////////////////////////////////////
                                WITHDRAW
    //////////////////////////////////////////////////////////////*/

    function test_OwnerCannotWithdrawEscrow() public {
        _mint(alice, 2);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.NothingToWithdraw.selector, owner));
        vm.prank(owner);
        nft.withdraw();
        vm.assertEq(address(nft).balance, ULTRA, "escrow stays");
    }

    function test_OwnerWithdrawsFees() public {
        uint256 id = _mint(alice, 2);
        vm.prank(oracle);
        nft.setImage(id, DIGEST);
        uint256 fee = ULTRA * FEE_BPS / 10_000;
        vm.prank(owner);
        nft.withdraw();
        vm.assertEq(owner.balance, fee, "fee paid");
        vm.assertEq(nft.credit(owner), 0, "fee cleared");
        vm.assertEq(address(nft).balance, ULTRA - fee, "oracle credit stays");
    }

    /*//////////////////////////////////////////////////////////////
                             OWNER SETTINGS
    //////////////////////////////////////////////////////////////*/

    function testFuzz_SetPriceBound(uint256 newPrice) public {
        bool representable = newPrice % 1 gwei == 0 && newPrice <= nft.MAX_PRICE();
        if (!representable) {
            vm.expectRevert(abi.encodeWithSelector(GenImNFT.UnrepresentablePrice.selector, newPrice, nft.MAX_PRICE()));
        }
        vm.prank(owner);
        nft.setPrice(1, newPrice);
        if (representable) vm.assertEq(nft.price(1), newPrice, "stored exactly");
        vm.assertEq(nft.price(0), BASIC, "neighbour untouched");
        vm.assertEq(nft.price(2), ULTRA, "neighbour untouched");
    }

    function test_MaxPriceEscrowRoundTrips() public {
        uint256 maxPrice = nft.MAX_PRICE();
        vm.prank(owner);
        nft.setPrice(2, maxPrice);
        vm.deal(alice, maxPrice);
        vm.prank(alice);
        uint256 id = nft.mint{value: maxPrice}("p", 2, 0);
        vm.assertEq(nft.request(id).escrow, maxPrice, "escrow exact at the bound");
    }

    function testFuzz_SetFeeBound(uint16 bps) public {
        if (bps > 2000) vm.expectRevert(abi.encodeWithSelector(GenImNFT.FeeTooHigh.selector, bps, 2000));
        vm.prank(owner);
        nft.setFee(bps);
        if (bps <= 2000) vm.assertEq(nft.feeBps(), bps, "fee");
    }

    function testFuzz_SetTimeoutBound(uint32 t) public {
        bool ok = t >= 5 minutes && t <= 30 days;
        if (!ok) vm.expectRevert(abi.encodeWithSelector(GenImNFT.TimeoutOutOfRange.selector, t, 5 minutes, 30 days));
        vm.prank(owner);
        nft.setTimeout(t);
        if (ok) vm.assertEq(nft.timeout(), t, "timeout");
        vm.assertEq(nft.feeBps(), FEE_BPS, "fee untouched");
        vm.assertEq(nft.price(2), ULTRA, "price untouched");
    }

    function test_RevertWhen_SettingsByNonOwner() public {
        bytes memory unauthorised = abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice);
        vm.startPrank(alice);
        vm.expectRevert(unauthorised);
        nft.setPrice(0, 1 gwei);
        vm.expectRevert(unauthorised);
        nft.setOracle(alice, true);
        vm.expectRevert(unauthorised);
        nft.setFee(1);
        vm.expectRevert(unauthorised);
        nft.setTimeout(1 days);
        vm.expectRevert(unauthorised);
        nft.setPlaceholderURI("x");
        vm.expectRevert(unauthorised);
        nft.setContractURI("x");
        vm.expectRevert(unauthorised);
        nft.setDefaultRoyalty(alice, 1);
        vm.expectRevert(unauthorised);
        nft.pause();
        vm.expectRevert(unauthorised);
        nft.unpause();
        vm.stopPrank();
    }

    function test_TwoStepOwnershipAndNoRenounce() public {
        vm.prank(owner);
        nft.transferOwnership(bob);
        vm.assertEq(nft.owner(), owner, "not yet");
        vm.prank(bob);
        nft.acceptOwnership();
        vm.assertEq(nft.owner(), bob, "accepted");
        vm.expectRevert(GenImNFT.RenounceDisabled.selector);
        vm.prank(bob);
        nft.renounceOwnership();
    }

    function test_RevertWhen_ZeroAddressOracle() public {
        vm.expectRevert(GenImNFT.ZeroAddressOracle.selector);
        vm.prank(owner);
        nft.setOracle(address(0), true);
    }

    function test_InterfacesAndRoyalty() public {
        vm.assertTrue(nft.supportsInterface(0x01ffc9a7), "ERC-165");
        vm.assertTrue(nft.supportsInterface(0x80ac58cd), "ERC-721");
        vm.assertTrue(nft.supportsInterface(0x5b5e139f), "metadata");
        vm.assertTrue(nft.supportsInterface(0x49064906), "ERC-4906");
        vm.assertTrue(nft.supportsInterface(0x2a55205a), "ERC-2981");
        vm.assertFalse(nft.supportsInterface(0xdeadbeef), "other");
        vm.prank(owner);
        nft.setDefaultRoyalty(bob, 250);
        (address receiver, uint256 amount) = nft.royaltyInfo(1, 1 ether);
        vm.assertEq(receiver, bob, "receiver");
        vm.assertEq(amount, 0.025 ether, "royalty");
        vm.prank(owner);
        nft.setContractURI("ipfs://contract");
        vm.assertEq(nft.contractURI(), "ipfs://contract", "contract uri");
    }
}
