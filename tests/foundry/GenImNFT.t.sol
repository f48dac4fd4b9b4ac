// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {ERC721} from "solady/tokens/ERC721.sol";
import {GenImNFT} from "../../contracts/GenImNFT.sol";
import {Feeds} from "./utils/Feeds.sol";
import {GenImNFTSetup} from "./utils/GenImNFTSetup.sol";
import {Usdc} from "./utils/Usdc.sol";

/// @dev Refuses ether: a minter that cannot take its excess back, or a holder that cannot take a refund.
contract EtherRefuser {
    function mint(GenImNFT nft, string calldata prompt, uint8 tier) external payable returns (uint256) {
        return nft.mint{value: msg.value}(prompt, tier, 0, nft.oracleEpoch());
    }
}

/// @dev The contract's life on both rails: mint, image, consent at mint (the oracle epoch), refund, credit and
/// withdrawal per asset, owner settings. The rails' own checks (feed, cache, EIP-3009) are in
/// GenImNFT.rails.t.sol.
contract GenImNFTTest is GenImNFTSetup {
    uint256 internal constant ALICE_KEY = 3;
    uint256 internal constant BOB_KEY = 4;
    address internal owner = vm.addr(1);
    address internal oracle = vm.addr(2);
    address internal alice = vm.addr(ALICE_KEY);
    address internal bob = vm.addr(BOB_KEY);
    address internal carol = vm.addr(5);
    address internal relayer = vm.addr(7);

    // The tiers' prices in wei at $3,000 per ether, rounded up to a gwei: 33,334, 100,000 and 266,667 gwei.
    uint256 internal basicWei = 33_334 gwei;
    uint256 internal premiumWei = 100_000 gwei;
    uint256 internal ultraWei = 266_667 gwei;
    // Any non-zero digest; keccak256 is an opcode, so it does not consume a prank (sha256 is a call).
    bytes32 internal constant DIGEST = keccak256("metadata #1");

    function setUp() public {
        _deploy(owner, _one(oracle));
        vm.deal(alice, 100 ether);
        vm.deal(bob, 100 ether);
        vm.assertEq(basicWei, _weiAt(BASIC_USD, ETH_USD), "basic in wei");
        vm.assertEq(premiumWei, _weiAt(PREMIUM_USD, ETH_USD), "premium in wei");
        vm.assertEq(ultraWei, _weiAt(ULTRA_USD, ETH_USD), "ultra in wei");
    }

    function _fee(uint256 escrow) internal pure returns (uint256) {
        return escrow * FEE_BPS / 10_000;
    }

    function _status(uint256 id) internal view returns (uint256) {
        return uint256(nft.request(id).status);
    }

    /*//////////////////////////////////////////////////////////////
                                  MINT
    //////////////////////////////////////////////////////////////*/

    function test_ConstructorWiring() public {
        vm.assertEq(address(nft.usdc()), address(usdc), "usdc");
        vm.assertEq(address(nft.ethUsdFeed()), address(ethUsd), "feed");
        vm.assertEq(address(nft.sequencerUptimeFeed()), address(sequencer), "sequencer feed");
        vm.assertEq(nft.price(0), BASIC_USD, "basic $0.10");
        vm.assertEq(nft.price(1), PREMIUM_USD, "premium $0.30");
        vm.assertEq(nft.price(2), ULTRA_USD, "ultra $0.80");
        vm.assertEq(nft.maxPriceAge(), 1 hours, "default price age");
        vm.assertEq(nft.oracleEpoch(), 1, "one authorisation so far");
        vm.assertEq(nft.servesFrom(oracle), 1, "the initial oracle serves every token");
        vm.assertEq(nft.usdcLiabilities(), 0, "no USDC owed");
        vm.expectRevert(GenImNFT.ZeroAddress.selector);
        _deployWith(owner, _one(oracle), address(usdc), address(0), address(sequencer));
    }

    function test_MintHoldsPriceInEscrow() public {
        vm.assertEq(nft.priceInWei(1), premiumWei, "price in wei");
        uint256 id = _mintEth(alice, 1);
        GenImNFT.Request memory r = nft.request(id);
        vm.assertEq(id, 1, "first id");
        vm.assertEq(nft.ownerOf(id), alice, "holder");
        vm.assertEq(uint256(r.status), uint256(GenImNFT.Status.Pending), "status");
        vm.assertEq(uint256(r.asset), uint256(GenImNFT.Asset.ETH), "asset");
        vm.assertEq(r.tier, 1, "tier");
        vm.assertEq(r.aspect, 0, "aspect");
        vm.assertEq(r.escrow, premiumWei, "escrow");
        vm.assertEq(r.deadline, block.timestamp + 1 hours, "deadline");
        vm.assertEq(address(nft).balance, premiumWei, "balance");
        vm.assertEq(nft.nextTokenId(), 2, "next id");
    }

    function test_MintEmitsPromptBoundOnChain() public {
        uint256 deadline = block.timestamp + 1 hours;
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.ImageRequested(1, alice, 0, 0, GenImNFT.Asset.ETH, basicWei, uint40(deadline), "a red fox");
        vm.prank(alice);
        nft.mint{value: basicWei}("a red fox", 0, 0, 1);
    }

    function testFuzz_AspectBoundAtMint(uint8 aspect) public {
        uint8 count = nft.ASPECT_COUNT();
        vm.prank(alice);
        if (aspect >= count) {
            vm.expectRevert(abi.encodeWithSelector(GenImNFT.UnknownAspect.selector, aspect));
            nft.mint{value: premiumWei}("a wide harbour", 1, aspect, 1);
            vm.assertEq(address(nft).balance, 0, "no payment taken");
            vm.assertEq(nft.nextTokenId(), 1, "nothing minted");
            return;
        }
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.ImageRequested(
            1, alice, 1, aspect, GenImNFT.Asset.ETH, premiumWei, uint40(block.timestamp + 1 hours), "a wide harbour"
        );
        uint256 id = nft.mint{value: premiumWei}("a wide harbour", 1, aspect, 1);
        GenImNFT.Request memory r = nft.request(id);
        vm.assertEq(r.aspect, aspect, "aspect stored");
        vm.assertEq(r.tier, 1, "tier beside it");
        vm.assertEq(r.escrow, premiumWei, "escrow beside it");
    }

    /// With a timestamp near 2**40, now + timeout does not fit the deadline's 40 bits. Unmasked, the carry
    /// would land in the escrow field and the token would be worth twice its price at refund; masked, the
    /// deadline wraps, the escrow, tier and asset stay exact, and the books balance. On both rails.
    function test_DeadlineCarryNeverReachesEscrow() public {
        uint256 timeout = nft.timeout();
        vm.warp((uint256(1) << 40) - timeout + 5); // now + timeout = 2**40 + 5
        Feeds.setPrice(ethUsd, ETH_USD);
        Feeds.sequencerUp(sequencer, 2 * Feeds.GRACE_PERIOD);
        uint256 id = _mintEth(alice, 2);
        uint256 usdcId = _mintUsdc(BOB_KEY, 2, relayer);
        GenImNFT.Request memory r = nft.request(id);
        vm.assertEq(r.deadline, 5, "deadline wrapped to its 40 bits");
        vm.assertEq(r.escrow, ultraWei, "escrow intact");
        vm.assertEq(r.tier, 2, "tier intact");
        vm.assertEq(r.aspect, 0, "aspect intact");
        vm.assertEq(uint256(r.asset), uint256(GenImNFT.Asset.ETH), "asset intact");
        r = nft.request(usdcId);
        vm.assertEq(r.deadline, 5, "USDC deadline wrapped");
        vm.assertEq(r.escrow, ULTRA_USD, "USDC escrow intact");
        vm.assertEq(uint256(r.asset), uint256(GenImNFT.Asset.USDC), "USDC asset intact");
        uint256 before = alice.balance;
        vm.prank(alice);
        nft.refund(id);
        vm.prank(bob);
        nft.refund(usdcId);
        vm.assertEq(alice.balance, before + ultraWei, "refund is the price paid, not more");
        vm.assertEq(usdc.balanceOf(bob), ULTRA_USD, "USDC refund is the price paid, not more");
        vm.assertEq(address(nft).balance, 0, "ETH books balance");
        vm.assertEq(usdc.balanceOf(address(nft)), 0, "USDC books balance");
        vm.assertEq(nft.usdcLiabilities(), 0, "nothing owed");
    }

    function testFuzz_MintReturnsExcess(uint256 paid) public {
        paid = bound(paid, basicWei, 50 ether);
        uint256 before = alice.balance;
        vm.prank(alice);
        nft.mint{value: paid}("p", 0, 0, 1);
        vm.assertEq(alice.balance, before - basicWei, "only the price is kept");
        vm.assertEq(address(nft).balance, basicWei, "escrow");
    }

    function testFuzz_RevertWhen_PaymentShort(uint256 paid) public {
        paid = bound(paid, 0, premiumWei - 1);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.InsufficientPayment.selector, uint8(1), premiumWei, paid));
        vm.prank(alice);
        nft.mint{value: paid}("p", 1, 0, 1);
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
        nft.mint{value: basicWei}(prompt, 0, 0, 1);
    }

    /// The USDC rail makes the same checks before any USDC moves: the authorization stays unused.
    function test_RevertWhen_UsdcMintTermsInvalid() public {
        Usdc.mint(usdc, alice, DOLLAR);
        bytes32 nonce = _nonce();
        bytes memory sig = _authorize(ALICE_KEY, BASIC_USD, nonce);
        vm.startPrank(relayer);
        vm.expectRevert(GenImNFT.EmptyPrompt.selector);
        nft.mintWithAuthorization("", 0, 0, 1, alice, 0, FOREVER, nonce, sig);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.PromptTooLong.selector, 1001, 1000));
        nft.mintWithAuthorization(string(new bytes(1001)), 0, 0, 1, alice, 0, FOREVER, nonce, sig);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.UnknownAspect.selector, 4));
        nft.mintWithAuthorization("p", 0, 4, 1, alice, 0, FOREVER, nonce, sig);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.UnknownTier.selector, 3));
        nft.mintWithAuthorization("p", 3, 0, 1, alice, 0, FOREVER, nonce, sig);
        vm.stopPrank();
        vm.assertFalse(usdc.authorizationState(alice, nonce), "authorization unused");
        vm.assertEq(usdc.balanceOf(alice), DOLLAR, "no USDC moved");
        vm.prank(relayer);
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, sig);
        vm.assertEq(usdc.balanceOf(alice), DOLLAR - BASIC_USD, "the same authorization still pays");
    }

    function test_RevertWhen_MintPaused() public {
        vm.prank(owner);
        nft.pause();
        vm.expectRevert(GenImNFT.MintingIsPaused.selector);
        vm.prank(alice);
        nft.mint{value: basicWei}("p", 0, 0, 1);
        Usdc.mint(usdc, alice, DOLLAR);
        bytes32 nonce = _nonce();
        bytes memory sig = _authorize(ALICE_KEY, BASIC_USD, nonce);
        vm.expectRevert(GenImNFT.MintingIsPaused.selector);
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, sig);
        vm.prank(owner);
        nft.unpause();
        _mintEth(alice, 0);
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, sig);
        vm.assertEq(nft.balanceOf(alice), 2, "both rails mint again");
    }

    function test_RevertWhen_TierUnknownOrDisabled() public {
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.UnknownTier.selector, uint8(3)));
        vm.prank(alice);
        nft.mint{value: basicWei}("p", 3, 0, 1);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.UnknownTier.selector, uint8(3)));
        nft.price(3);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.UnknownTier.selector, uint8(3)));
        nft.priceInWei(3);
        vm.prank(owner);
        nft.setPrice(2, 0);
        vm.assertEq(nft.priceInWei(2), 0, "off sale: no price in wei");
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.TierDisabled.selector, uint8(2)));
        vm.prank(alice);
        nft.mint{value: ultraWei}("p", 2, 0, 1);
        bytes32 nonce = _nonce();
        bytes memory sig = _authorize(ALICE_KEY, 0, nonce);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.TierDisabled.selector, uint8(2)));
        nft.mintWithAuthorization("p", 2, 0, 1, alice, 0, FOREVER, nonce, sig);
    }

    function test_RevertWhen_ExcessCannotBeReturned() public {
        EtherRefuser refuser = new EtherRefuser();
        vm.deal(address(refuser), 1 ether);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.TransferFailed.selector, address(refuser), 1));
        vm.prank(alice);
        refuser.mint{value: basicWei + 1}(nft, "p", 0);
    }

    /// Price, fee, timeout and the ETH/USD rate change after mint; the terms of tokens minted before do not.
    function test_RequestTermsStayAfterSettingsChange() public {
        uint256 id = _mintEth(alice, 0);
        uint256 usdcId = _mintUsdc(BOB_KEY, 0, relayer);
        uint256 deadline = block.timestamp + 1 hours;
        vm.startPrank(owner);
        nft.setPrice(0, 2 * BASIC_USD);
        nft.setTimeout(2 days);
        nft.setFee(2000);
        vm.stopPrank();
        _movePrice(1500 * Feeds.USD);
        vm.assertEq(nft.priceInWei(0), 4 * basicWei - 2 gwei, "later mints pay the new price at the new rate");
        GenImNFT.Request memory r = nft.request(id);
        vm.assertEq(r.escrow, basicWei, "escrow fixed at mint");
        vm.assertEq(r.deadline, deadline, "deadline fixed at mint");
        r = nft.request(usdcId);
        vm.assertEq(r.escrow, BASIC_USD, "USDC escrow fixed at mint");
        vm.assertEq(r.deadline, deadline, "USDC deadline fixed at mint");
        vm.assertEq(uint256(r.asset), uint256(GenImNFT.Asset.USDC), "asset fixed at mint");
    }

    /*//////////////////////////////////////////////////////////////
                                SET IMAGE
    //////////////////////////////////////////////////////////////*/

    function test_SetImagePaysOracleFromEscrow() public {
        uint256 id = _mintEth(alice, 2);
        vm.expectEmit(true, true, false, true);
        emit GenImNFT.ImageSet(id, oracle, DIGEST, GenImNFT.Asset.ETH, ultraWei - _fee(ultraWei), _fee(ultraWei));
        vm.expectEmit(false, false, false, true);
        emit GenImNFT.MetadataUpdate(id);
        vm.prank(oracle);
        nft.setImage(id, DIGEST);
        GenImNFT.Request memory r = nft.request(id);
        vm.assertEq(uint256(r.status), uint256(GenImNFT.Status.Fulfilled), "fulfilled");
        vm.assertEq(r.metadataDigest, DIGEST, "digest");
        vm.assertEq(nft.credit(oracle), ultraWei - _fee(ultraWei), "oracle credit");
        vm.assertEq(nft.credit(owner), _fee(ultraWei), "fee");
        vm.assertEq(nft.usdcCredit(oracle), 0, "no USDC credit");
    }

    /// A USDC escrow pays the oracle and the fee in USDC; the ETH books do not move.
    function test_SetImagePaysInTheEscrowsAsset() public {
        uint256 id = _mintUsdc(ALICE_KEY, 2, relayer);
        vm.expectEmit(true, true, false, true);
        emit GenImNFT.ImageSet(id, oracle, DIGEST, GenImNFT.Asset.USDC, ULTRA_USD - _fee(ULTRA_USD), _fee(ULTRA_USD));
        vm.prank(oracle);
        nft.setImage(id, DIGEST);
        vm.assertEq(nft.usdcCredit(oracle), ULTRA_USD - _fee(ULTRA_USD), "oracle's USDC credit");
        vm.assertEq(nft.usdcCredit(owner), _fee(ULTRA_USD), "USDC fee");
        vm.assertEq(nft.credit(oracle), 0, "no ETH credit");
        vm.assertEq(nft.credit(owner), 0, "no ETH fee");
        vm.assertEq(nft.usdcLiabilities(), ULTRA_USD, "the escrow moved within the books");
    }

    function test_TokenURIIsPlaceholderThenCid() public {
        vm.prank(owner);
        nft.setPlaceholderURI("ipfs://placeholder");
        uint256 id = _mintEth(alice, 0);
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
        uint256 id = _mintEth(alice, 0);
        vm.prank(oracle);
        nft.setImage(id, DIGEST);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.ImageAlreadySet.selector, id, DIGEST));
        vm.prank(oracle);
        nft.setImage(id, keccak256("other"));
    }

    function test_RevertWhen_NotOracle() public {
        uint256 id = _mintEth(alice, 0);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.NotOracle.selector, bob));
        vm.prank(bob);
        nft.setImage(id, DIGEST);
    }

    function test_RevertWhen_SetImageAtDeadline() public {
        uint256 id = _mintEth(alice, 0);
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
        uint256 id = _mintEth(alice, 0);
        vm.warp(block.timestamp + 1 hours);
        vm.prank(alice);
        nft.refund(id);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.RequestNotPending.selector, id, GenImNFT.Status.Refunded));
        vm.prank(oracle);
        nft.setImage(id, DIGEST);
    }

    /// A batch fails as a whole; one that passes credits each token in its own asset.
    function test_SetImagesIsAllOrNothing() public {
        uint256 a = _mintEth(alice, 0);
        uint256 b = _mintEth(bob, 1);
        uint256 c = _mintUsdc(ALICE_KEY, 2, relayer);
        uint256[] memory ids = new uint256[](2);
        bytes32[] memory digests = new bytes32[](2);
        (ids[0], ids[1]) = (a, b);
        (digests[0], digests[1]) = (DIGEST, DIGEST);
        vm.prank(oracle);
        nft.setImage(b, DIGEST);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.ImageAlreadySet.selector, b, DIGEST));
        vm.prank(oracle);
        nft.setImages(ids, digests);
        vm.assertEq(_status(a), uint256(GenImNFT.Status.Pending), "a untouched");

        ids[1] = c;
        vm.prank(oracle);
        nft.setImages(ids, digests);
        uint256 fees = _fee(basicWei) + _fee(premiumWei);
        vm.assertEq(nft.credit(oracle), basicWei + premiumWei - fees, "both ETH images paid");
        vm.assertEq(nft.credit(owner), fees, "both ETH fees");
        vm.assertEq(nft.usdcCredit(oracle), ULTRA_USD - _fee(ULTRA_USD), "the USDC image paid in USDC");
        vm.assertEq(nft.usdcCredit(owner), _fee(ULTRA_USD), "USDC fee");
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
        uint256 id = _mintEth(alice, 0);
        uint256 usdcId = _mintUsdc(BOB_KEY, 1, relayer);
        vm.startPrank(oracle);
        nft.setImage(id, DIGEST);
        nft.setImage(usdcId, DIGEST);
        vm.stopPrank();
        vm.prank(owner);
        nft.setOracle(oracle, false);
        vm.assertFalse(nft.isOracle(oracle), "revoked");
        uint256 owed = nft.credit(oracle);
        uint256 owedUsdc = nft.usdcCredit(oracle);
        vm.assertEq(owed, basicWei - _fee(basicWei), "ETH credit kept");
        vm.assertEq(owedUsdc, PREMIUM_USD - _fee(PREMIUM_USD), "USDC credit kept");
        uint256 before = oracle.balance;
        vm.expectEmit(true, true, false, true);
        emit GenImNFT.Withdrawn(oracle, oracle, owed, owedUsdc);
        vm.prank(oracle);
        nft.withdraw();
        vm.assertEq(oracle.balance, before + owed, "ETH withdrawn");
        vm.assertEq(usdc.balanceOf(oracle), owedUsdc, "USDC withdrawn");
        uint256 next = _mintEth(alice, 0);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.NotOracle.selector, oracle));
        vm.prank(oracle);
        nft.setImage(next, DIGEST);
    }

    /*//////////////////////////////////////////////////////////////
                            CONSENT AT MINT
    //////////////////////////////////////////////////////////////*/

    /// The audit's drain: in the same block, just before a buyer's mint, the owner authorises itself as an
    /// oracle, means to set the buyer's image to garbage and withdraw the escrow. The buyer's mint names the
    /// epoch it read, so it reverts OracleSetChanged on either rail and nothing is paid; tokens minted
    /// before are out of the owner's reach (OracleAuthorisedAfterMint), nothing is withdrawable, and the
    /// buyers get their refunds in their own asset.
    function test_RevertWhen_OwnerDrainsPendingEscrow() public {
        uint256 a = _mintEth(alice, 2);
        uint256 b = _mintUsdc(BOB_KEY, 1, relayer);
        uint256 seen = nft.oracleEpoch();
        // Carol read the epoch and signed her USDC authorization; then, in the same block, the owner moves.
        Usdc.mint(usdc, carol, DOLLAR);
        bytes32 nonce = _nonce();
        bytes memory sig = _authorize(5, BASIC_USD, nonce);
        vm.deal(carol, 1 ether);
        vm.prank(owner);
        nft.setOracle(owner, true);
        vm.assertEq(nft.oracleEpoch(), seen + 1, "authorising bumps the epoch");
        vm.assertEq(nft.servesFrom(owner), 3, "the owner serves only later tokens");

        bytes memory changed = abi.encodeWithSelector(GenImNFT.OracleSetChanged.selector, seen, seen + 1);
        vm.expectRevert(changed);
        vm.prank(carol);
        nft.mint{value: basicWei}(PROMPT, 0, 0, seen);
        vm.expectRevert(changed);
        nft.mintWithAuthorization(PROMPT, 0, 0, seen, carol, 0, FOREVER, nonce, sig);
        vm.assertEq(carol.balance, 1 ether, "carol paid no ether");
        vm.assertEq(usdc.balanceOf(carol), DOLLAR, "carol paid no USDC");
        vm.assertFalse(usdc.authorizationState(carol, nonce), "her authorization is still hers to use");
        vm.assertEq(nft.nextTokenId(), 3, "no token minted under an oracle set carol never saw");

        vm.startPrank(owner);
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
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.NothingToWithdraw.selector, owner));
        nft.withdrawTo(payable(owner));
        vm.stopPrank();
        vm.assertEq(address(nft).balance, ultraWei, "ETH escrow stays");
        vm.assertEq(usdc.balanceOf(address(nft)), PREMIUM_USD, "USDC escrow stays");
        vm.assertEq(_status(a), uint256(GenImNFT.Status.Pending), "a pending");
        vm.assertEq(_status(b), uint256(GenImNFT.Status.Pending), "b pending");

        vm.warp(block.timestamp + 1 hours);
        uint256 before = alice.balance;
        vm.prank(carol);
        nft.refund(a);
        vm.prank(carol);
        nft.refund(b);
        vm.assertEq(alice.balance, before + ultraWei, "alice refunded in ETH");
        vm.assertEq(usdc.balanceOf(bob), PREMIUM_USD, "bob refunded in USDC");
        vm.assertEq(nft.credit(owner) + nft.usdcCredit(owner), 0, "the owner took nothing");
    }

    /// A mint names the epoch: the next epoch, or an old one, does not do; authorising an oracle that is
    /// authorised already, and revoking, leave the epoch alone (the set the buyer agreed to did not grow).
    function test_MintNamesTheOracleEpoch() public {
        address operator = vm.addr(9);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.OracleSetChanged.selector, 2, 1));
        vm.prank(alice);
        nft.mint{value: basicWei}("p", 0, 0, 2);
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.OracleUpdated(operator, true, 1, 2);
        vm.prank(owner);
        nft.setOracle(operator, true);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.OracleSetChanged.selector, 1, 2));
        vm.prank(alice);
        nft.mint{value: basicWei}("p", 0, 0, 1);
        vm.startPrank(owner);
        nft.setOracle(operator, true);
        vm.assertEq(nft.oracleEpoch(), 2, "authorised again: unchanged");
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.OracleUpdated(oracle, false, 0, 2);
        nft.setOracle(oracle, false);
        vm.assertEq(nft.oracleEpoch(), 2, "revoking: unchanged");
        nft.setOracle(oracle, true);
        vm.assertEq(nft.oracleEpoch(), 3, "re-authorising: a new set");
        vm.stopPrank();
        vm.prank(alice);
        nft.mint{value: basicWei}("p", 0, 0, 3);
    }

    function test_OracleAuthorisedLaterServesOnlyLaterMints() public {
        address operator = vm.addr(9);
        uint256 before_ = _mintEth(alice, 0);
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.OracleUpdated(operator, true, 2, 2);
        vm.prank(owner);
        nft.setOracle(operator, true);
        uint256 after_ = _mintUsdc(BOB_KEY, 0, relayer);
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
        uint256 first = _mintEth(alice, 0);
        vm.prank(owner);
        nft.setOracle(oracle, false);
        vm.assertEq(nft.servesFrom(oracle), 0, "revoked");
        uint256 whileRevoked = _mintUsdc(ALICE_KEY, 0, relayer);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.NotOracle.selector, oracle));
        vm.prank(oracle);
        nft.setImage(first, DIGEST);
        vm.prank(owner);
        nft.setOracle(oracle, true);
        uint256 later = _mintEth(bob, 0);
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

    /// Credit (both assets) and consent share one slot: earning, revoking, re-authorising and withdrawing
    /// keep all three exact.
    function test_CreditSurvivesConsentChanges() public {
        uint256 id = _mintEth(alice, 2);
        uint256 usdcId = _mintUsdc(BOB_KEY, 2, relayer);
        vm.startPrank(oracle);
        nft.setImage(id, DIGEST);
        nft.setImage(usdcId, DIGEST);
        vm.stopPrank();
        uint256 owed = ultraWei - _fee(ultraWei);
        uint256 owedUsdc = ULTRA_USD - _fee(ULTRA_USD);
        vm.startPrank(owner);
        nft.setOracle(oracle, false);
        nft.setOracle(oracle, true);
        vm.stopPrank();
        vm.assertEq(nft.credit(oracle), owed, "ETH credit kept through revoke and re-authorise");
        vm.assertEq(nft.usdcCredit(oracle), owedUsdc, "USDC credit kept through revoke and re-authorise");
        vm.assertEq(nft.servesFrom(oracle), 3, "consent from the next token");
        vm.prank(oracle);
        nft.withdraw();
        vm.assertEq(nft.credit(oracle), 0, "ETH withdrawn");
        vm.assertEq(nft.usdcCredit(oracle), 0, "USDC withdrawn");
        vm.assertEq(nft.servesFrom(oracle), 3, "withdraw keeps consent");
        vm.assertTrue(nft.isOracle(oracle), "withdraw keeps authorisation");
    }

    /*//////////////////////////////////////////////////////////////
                                 REFUND
    //////////////////////////////////////////////////////////////*/

    function test_RefundExactlyAtDeadline() public {
        uint256 id = _mintEth(alice, 1);
        uint256 deadline = nft.request(id).deadline;
        vm.warp(deadline - 1);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.DeadlineNotReached.selector, id, deadline));
        vm.prank(alice);
        nft.refund(id);
        vm.warp(deadline);
        uint256 before = alice.balance;
        vm.prank(alice);
        nft.refund(id);
        vm.assertEq(alice.balance, before + premiumWei, "escrow back");
        vm.assertEq(address(nft).balance, 0, "nothing left");
        vm.assertEq(_status(id), uint256(GenImNFT.Status.Refunded), "refunded");
        vm.expectRevert(ERC721.TokenDoesNotExist.selector);
        nft.ownerOf(id);
    }

    /// A USDC escrow goes back in USDC, to the holder, whoever calls; the ETH books do not move.
    function test_UsdcEscrowRefundedInUsdc() public {
        uint256 id = _mintUsdc(ALICE_KEY, 1, relayer);
        vm.prank(alice);
        nft.transferFrom(alice, bob, id);
        uint256 deadline = nft.request(id).deadline;
        vm.warp(deadline - 1);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.DeadlineNotReached.selector, id, deadline));
        nft.refund(id);
        vm.warp(deadline);
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.Refunded(id, bob, GenImNFT.Asset.USDC, PREMIUM_USD, false);
        vm.prank(carol);
        nft.refund(id);
        vm.assertEq(usdc.balanceOf(bob), PREMIUM_USD, "holder paid in USDC");
        vm.assertEq(usdc.balanceOf(alice), 0, "the buyer, no longer the holder, is not paid");
        vm.assertEq(usdc.balanceOf(address(nft)), 0, "nothing left");
        vm.assertEq(nft.usdcLiabilities(), 0, "off the books");
        vm.assertEq(_status(id), uint256(GenImNFT.Status.Refunded), "refunded");
    }

    /// Anyone may trigger a refund after the deadline (the former holder here); it always pays the holder.
    function test_RefundPaysCurrentHolder() public {
        uint256 id = _mintEth(alice, 0);
        vm.prank(alice);
        nft.transferFrom(alice, bob, id);
        vm.warp(block.timestamp + 2 hours);
        uint256 aliceBefore = alice.balance;
        uint256 bobBefore = bob.balance;
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.Refunded(id, bob, GenImNFT.Asset.ETH, basicWei, false);
        vm.prank(alice);
        nft.refund(id);
        vm.assertEq(bob.balance, bobBefore + basicWei, "holder paid");
        vm.assertEq(alice.balance, aliceBefore, "caller not paid");
    }

    /// A holder that refuses ether cannot block its refund: the escrow becomes its credit, which it can take
    /// to another address with withdrawTo.
    function test_RefundToRejectingHolderIsCredited() public {
        EtherRefuser refuser = new EtherRefuser();
        uint256 id = _mintEth(alice, 1);
        vm.prank(alice);
        nft.transferFrom(alice, address(refuser), id);
        vm.warp(block.timestamp + 1 hours);
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.Refunded(id, address(refuser), GenImNFT.Asset.ETH, premiumWei, true);
        vm.prank(bob);
        nft.refund(id);
        vm.assertEq(_status(id), uint256(GenImNFT.Status.Refunded), "refunded");
        vm.assertEq(nft.credit(address(refuser)), premiumWei, "credited");
        vm.assertEq(address(nft).balance, premiumWei, "still held for the holder");
        vm.assertFalse(nft.isOracle(address(refuser)), "credit is not authorisation");
        // It still refuses ether, so withdrawing to itself fails and keeps the credit.
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.TransferFailed.selector, address(refuser), premiumWei));
        vm.prank(address(refuser));
        nft.withdraw();
        vm.assertEq(nft.credit(address(refuser)), premiumWei, "credit kept");
        vm.expectEmit(true, true, false, true);
        emit GenImNFT.Withdrawn(address(refuser), carol, premiumWei, 0);
        vm.prank(address(refuser));
        nft.withdrawTo(payable(carol));
        vm.assertEq(carol.balance, premiumWei, "paid to the recipient it named");
        vm.assertEq(nft.credit(address(refuser)), 0, "credit cleared");
        vm.assertEq(address(nft).balance, 0, "nothing left");
    }

    /// USDC refuses a blacklisted holder: its USDC refund lands as USDC credit, which it withdraws with
    /// withdrawTo to an address USDC accepts (withdraw to itself fails and keeps the credit).
    function test_BlacklistedHolderIsCreditedAndWithdrawsTo() public {
        uint256 id = _mintUsdc(BOB_KEY, 2, relayer);
        vm.prank(usdcOwner);
        usdc.blacklist(bob);
        vm.warp(block.timestamp + 1 hours);
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.Refunded(id, bob, GenImNFT.Asset.USDC, ULTRA_USD, true);
        vm.prank(carol);
        nft.refund(id);
        vm.assertEq(nft.usdcCredit(bob), ULTRA_USD, "credited in USDC");
        vm.assertEq(nft.credit(bob), 0, "not in ETH");
        vm.assertEq(nft.usdcLiabilities(), ULTRA_USD, "still on the books, as credit");
        vm.assertEq(usdc.balanceOf(address(nft)), ULTRA_USD, "still held");
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.UsdcTransferFailed.selector, bob, ULTRA_USD));
        vm.prank(bob);
        nft.withdraw();
        vm.assertEq(nft.usdcCredit(bob), ULTRA_USD, "credit kept");
        vm.prank(bob);
        nft.withdrawTo(payable(carol));
        vm.assertEq(usdc.balanceOf(carol), ULTRA_USD, "paid to the recipient it named");
        vm.assertEq(nft.usdcCredit(bob), 0, "credit cleared");
        vm.assertEq(nft.usdcLiabilities(), 0, "off the books");
        vm.assertEq(usdc.balanceOf(address(nft)), 0, "nothing left");
    }

    /// A token sent to the NFT contract itself: nobody holds a key to it, yet its refund lands. In ETH it
    /// becomes the contract's own credit, which no one can withdraw, and the books stay exact. In USDC the
    /// contract pays itself: the escrow leaves the books and stays in the balance as unbooked USDC (the
    /// solvency inequality holds; the USDC side is no longer equal).
    function test_RefundOfTokenHeldByTheContractItself() public {
        uint256 id = _mintEth(alice, 2);
        uint256 usdcId = _mintUsdc(ALICE_KEY, 2, relayer);
        vm.startPrank(alice);
        nft.transferFrom(alice, address(nft), id);
        nft.transferFrom(alice, address(nft), usdcId);
        vm.stopPrank();
        vm.warp(block.timestamp + 1 hours);
        vm.startPrank(bob);
        nft.refund(id);
        nft.refund(usdcId);
        vm.stopPrank();
        vm.assertEq(_status(id), uint256(GenImNFT.Status.Refunded), "refunded");
        vm.assertEq(nft.credit(address(nft)), ultraWei, "credited to the holder, the contract");
        vm.assertEq(address(nft).balance, ultraWei, "balance matches the credit");
        vm.assertEq(_status(usdcId), uint256(GenImNFT.Status.Refunded), "USDC token refunded");
        vm.assertEq(nft.usdcCredit(address(nft)), 0, "USDC paid, to itself");
        vm.assertEq(nft.usdcLiabilities(), 0, "off the books");
        vm.assertEq(_unbookedUsdc(), ULTRA_USD, "the USDC stays, unbooked");
        vm.prank(owner);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.NothingToWithdraw.selector, owner));
        nft.withdraw();
    }

    function test_RefundWorksWhilePaused() public {
        uint256 id = _mintEth(alice, 0);
        uint256 usdcId = _mintUsdc(ALICE_KEY, 0, relayer);
        vm.prank(owner);
        nft.pause();
        vm.warp(block.timestamp + 1 hours);
        vm.startPrank(alice);
        nft.refund(id);
        nft.refund(usdcId);
        vm.stopPrank();
        vm.assertEq(usdc.balanceOf(alice), BASIC_USD, "USDC back");
    }

    function test_RevertWhen_RefundAfterImage() public {
        uint256 id = _mintEth(alice, 0);
        uint256 usdcId = _mintUsdc(ALICE_KEY, 0, relayer);
        vm.startPrank(oracle);
        nft.setImage(id, DIGEST);
        nft.setImage(usdcId, DIGEST);
        vm.stopPrank();
        vm.warp(block.timestamp + 1 days);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.RequestNotPending.selector, id, GenImNFT.Status.Fulfilled));
        vm.prank(alice);
        nft.refund(id);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.RequestNotPending.selector, usdcId, GenImNFT.Status.Fulfilled));
        vm.prank(alice);
        nft.refund(usdcId);
    }

    /*//////////////////////////////////////////////////////////////
                                WITHDRAW
    //////////////////////////////////////////////////////////////*/

    function test_OwnerCannotWithdrawEscrow() public {
        _mintEth(alice, 2);
        _mintUsdc(BOB_KEY, 2, relayer);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.NothingToWithdraw.selector, owner));
        vm.prank(owner);
        nft.withdraw();
        vm.assertEq(address(nft).balance, ultraWei, "ETH escrow stays");
        vm.assertEq(usdc.balanceOf(address(nft)), ULTRA_USD, "USDC escrow stays");
    }

    /// The owner's fees come out in the asset of each escrow, in one withdrawal; the oracle's credit stays.
    function test_OwnerWithdrawsFees() public {
        uint256 id = _mintEth(alice, 2);
        uint256 usdcId = _mintUsdc(BOB_KEY, 1, relayer);
        vm.startPrank(oracle);
        nft.setImage(id, DIGEST);
        nft.setImage(usdcId, DIGEST);
        vm.stopPrank();
        vm.assertEq(nft.credit(owner), _fee(ultraWei), "ETH fee");
        vm.assertEq(nft.usdcCredit(owner), _fee(PREMIUM_USD), "USDC fee");
        vm.expectEmit(true, true, false, true);
        emit GenImNFT.Withdrawn(owner, owner, _fee(ultraWei), _fee(PREMIUM_USD));
        vm.prank(owner);
        nft.withdraw();
        vm.assertEq(owner.balance, _fee(ultraWei), "ETH fee paid");
        vm.assertEq(usdc.balanceOf(owner), _fee(PREMIUM_USD), "USDC fee paid in USDC");
        vm.assertEq(nft.credit(owner) + nft.usdcCredit(owner), 0, "fees cleared");
        vm.assertEq(address(nft).balance, ultraWei - _fee(ultraWei), "oracle's ETH credit stays");
        vm.assertEq(usdc.balanceOf(address(nft)), PREMIUM_USD - _fee(PREMIUM_USD), "oracle's USDC credit stays");
        vm.assertEq(nft.usdcLiabilities(), PREMIUM_USD - _fee(PREMIUM_USD), "books: the oracle's credit");
    }

    /// An oracle's earnings in both assets go to the recipient it names, in one call.
    function test_OracleWithdrawsBothAssetsTo() public {
        uint256 id = _mintEth(alice, 0);
        uint256 usdcId = _mintUsdc(BOB_KEY, 2, relayer);
        vm.startPrank(oracle);
        nft.setImage(id, DIGEST);
        nft.setImage(usdcId, DIGEST);
        vm.expectRevert(GenImNFT.ZeroAddress.selector);
        nft.withdrawTo(payable(address(0)));
        vm.expectEmit(true, true, false, true);
        emit GenImNFT.Withdrawn(oracle, carol, basicWei - _fee(basicWei), ULTRA_USD - _fee(ULTRA_USD));
        nft.withdrawTo(payable(carol));
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.NothingToWithdraw.selector, oracle));
        nft.withdrawTo(payable(carol));
        vm.stopPrank();
        vm.assertEq(carol.balance, basicWei - _fee(basicWei), "ETH to the recipient");
        vm.assertEq(usdc.balanceOf(carol), ULTRA_USD - _fee(ULTRA_USD), "USDC to the recipient");
        vm.assertEq(oracle.balance, 0, "nothing to the oracle itself");
    }

    /*//////////////////////////////////////////////////////////////
                             OWNER SETTINGS
    //////////////////////////////////////////////////////////////*/

    function testFuzz_SetPriceBound(uint256 newPrice) public {
        bool representable = newPrice <= nft.MAX_PRICE();
        if (!representable) {
            vm.expectRevert(abi.encodeWithSelector(GenImNFT.UnrepresentablePrice.selector, newPrice, nft.MAX_PRICE()));
        } else {
            vm.expectEmit(true, true, true, true);
            emit GenImNFT.PriceUpdated(1, newPrice);
        }
        vm.prank(owner);
        nft.setPrice(1, newPrice);
        if (representable) vm.assertEq(nft.price(1), newPrice, "stored exactly");
        vm.assertEq(nft.price(0), BASIC_USD, "neighbour untouched");
        vm.assertEq(nft.price(2), ULTRA_USD, "neighbour untouched");
    }

    /// The highest price fits both escrows: in wei at $3,000 per ether, and in USDC units.
    function test_MaxPriceEscrowRoundTrips() public {
        uint256 maxPrice = nft.MAX_PRICE();
        vm.prank(owner);
        nft.setPrice(2, maxPrice);
        uint256 maxWei = _weiAt(maxPrice, ETH_USD);
        vm.assertEq(nft.priceInWei(2), maxWei, "about 1.43 ether");
        uint256 id = _mintEth(alice, 2);
        vm.assertEq(nft.request(id).escrow, maxWei, "ETH escrow exact at the bound");
        uint256 usdcId = _mintUsdc(BOB_KEY, 2, relayer);
        vm.assertEq(nft.request(usdcId).escrow, maxPrice, "USDC escrow exact at the bound");
        vm.warp(block.timestamp + 1 hours);
        nft.refund(id);
        nft.refund(usdcId);
        vm.assertEq(usdc.balanceOf(bob), maxPrice, "USDC refund exact");
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
        vm.assertEq(nft.price(2), ULTRA_USD, "price untouched");
        vm.assertEq(nft.maxPriceAge(), 1 hours, "price age untouched");
        vm.assertEq(nft.oracleEpoch(), 1, "epoch untouched");
    }

    function test_RevertWhen_SettingsByNonOwner() public {
        bytes memory unauthorised = abi.encodeWithSelector(Ownable.OwnableUnauthorizedAccount.selector, alice);
        vm.startPrank(alice);
        vm.expectRevert(unauthorised);
        nft.setPrice(0, 1);
        vm.expectRevert(unauthorised);
        nft.setOracle(alice, true);
        vm.expectRevert(unauthorised);
        nft.setFee(1);
        vm.expectRevert(unauthorised);
        nft.setTimeout(1 days);
        vm.expectRevert(unauthorised);
        nft.setMaxPriceAge(1 days);
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
        vm.expectRevert(GenImNFT.ZeroAddress.selector);
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
