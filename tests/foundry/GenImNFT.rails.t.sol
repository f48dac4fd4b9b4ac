// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/shared/mocks/MockV3Aggregator.sol";
import {GenImNFT} from "../../contracts/GenImNFT.sol";
import {Feeds} from "./utils/Feeds.sol";
import {GenImNFTSetup} from "./utils/GenImNFTSetup.sol";
import {Usdc} from "./utils/Usdc.sol";

/// @dev A minimal ERC-1271 smart wallet, a party of the USDC tests (not a double of our code): it accepts a
/// signature by its owner key over keccak256(wallet, hash), so the owner's bare signature of `hash` is not
/// the wallet's, and a check can only pass through isValidSignature.
contract SmartWallet {
    address public immutable signer;

    constructor(address signer_) {
        signer = signer_;
    }

    /// @dev The digest its owner signs for `hash`.
    function wrap(bytes32 hash) public view returns (bytes32) {
        return keccak256(abi.encode(address(this), hash));
    }

    function isValidSignature(bytes32 hash, bytes calldata signature) external view returns (bytes4) {
        if (signature.length != 65) return 0xffffffff;
        (bytes32 r, bytes32 s) = abi.decode(signature[:64], (bytes32, bytes32));
        uint8 v = uint8(signature[64]);
        return ecrecover(wrap(hash), v, r, s) == signer ? bytes4(0x1626ba7e) : bytes4(0xffffffff);
    }
}

/// @dev The two ways money enters: the ETH rail (Chainlink's ETH/USD rate with staleness and L2 sequencer
/// checks, rounded up to a gwei, the 60 s rate cache, the owner's bound on the answer's age) and the USDC rail
/// (EIP-3009 on Circle's real FiatTokenV2_2: both signature forms, USDC's own refusals passed on, replays,
/// an authorization someone else executed first, cancelled authorizations, an ERC-1271 wallet).
contract GenImNFTRailsTest is GenImNFTSetup {
    uint256 internal constant ALICE_KEY = 3;
    uint256 internal constant BOB_KEY = 4;
    uint256 internal constant WALLET_KEY = 0x5AFE;
    address internal owner = vm.addr(1);
    address internal oracle = vm.addr(2);
    address internal alice = vm.addr(ALICE_KEY);
    address internal bob = vm.addr(BOB_KEY);
    address internal mallory = vm.addr(6);
    address internal relayer = vm.addr(7);
    uint256 internal basicWei = 33_334 gwei; // $0.10 at $3,000, rounded up from 33,333.3 gwei

    function setUp() public {
        _deploy(owner, _one(oracle));
        vm.deal(alice, 100 ether);
    }

    /*//////////////////////////////////////////////////////////////
                           ETH RAIL: CONVERSION
    //////////////////////////////////////////////////////////////*/

    function test_PriceInWeiAtFeedRateRoundedUpToGwei() public {
        vm.assertEq(nft.priceInWei(0), basicWei, "33,333.3 gwei charged as 33,334");
        vm.assertEq(nft.priceInWei(1), 100_000 gwei, "exact: not rounded further");
        vm.assertEq(nft.priceInWei(2), 266_667 gwei, "266,666.7 gwei charged as 266,667");
        uint256 before = alice.balance;
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.ImageRequested(
            1, alice, 0, 0, GenImNFT.Asset.ETH, basicWei, uint40(block.timestamp + 1 hours), "p"
        );
        vm.prank(alice);
        nft.mint{value: 1 ether}("p", 0, 0, 1);
        vm.assertEq(alice.balance, before - basicWei, "charged the price in wei; the excess came back");
        vm.assertEq(address(nft).balance, basicWei, "the escrow holds what was charged");

        _movePrice(2000 * Feeds.USD);
        vm.assertEq(nft.priceInWei(0), 50_000 gwei, "a new rate, a new price in wei");
        vm.prank(alice);
        uint256 id = nft.mint{value: 1 ether}("p", 0, 0, 1);
        vm.assertEq(nft.request(id).escrow, 50_000 gwei, "charged at the new rate");
    }

    /// For any rate and dollar price: the wei charged is a whole number of gwei, worth at least the price,
    /// and less than a gwei more; a price that does not fit the escrow's 48 bits of gwei is refused.
    function testFuzz_ChargedWeiCoversThePriceByLessThanAGwei(uint256 answer, uint256 usd) public {
        answer = bound(answer, 1e6, 1e14); // $0.01 to $1,000,000 per ether
        usd = bound(usd, 1, nft.MAX_PRICE());
        vm.prank(owner);
        nft.setPrice(0, usd);
        Feeds.setPrice(ethUsd, int256(answer));
        uint256 expected = _weiAt(usd, int256(answer));
        if (expected / 1 gwei >= 1 << 48) {
            vm.expectRevert(abi.encodeWithSelector(GenImNFT.PriceOutOfRange.selector, expected / 1 gwei));
            nft.priceInWei(0);
            return;
        }
        uint256 charged = nft.priceInWei(0);
        vm.assertEq(charged % 1 gwei, 0, "whole gwei");
        vm.assertGe(charged * answer, usd * 1e20, "worth at least the price");
        vm.assertLt((charged - 1 gwei) * answer, usd * 1e20, "less than a gwei above it");
        vm.assertEq(charged, expected, "as computed from the definition");
        vm.deal(alice, charged);
        vm.prank(alice);
        uint256 id = nft.mint{value: charged}("p", 0, 0, 1);
        vm.assertEq(nft.request(id).escrow, charged, "escrow is the wei charged");
    }

    /// The feed's decimals set the scale: an 18-decimal ETH/USD feed gives the same wei as the 8-decimal one.
    function test_FeedDecimalsSetTheScale() public {
        MockV3Aggregator feed18 = new MockV3Aggregator(18, 3000e18);
        GenImNFT other = _deployWith(owner, _one(oracle), address(usdc), address(feed18), address(sequencer));
        vm.assertEq(other.priceInWei(0), basicWei, "basic");
        vm.assertEq(other.priceInWei(2), 266_667 gwei, "ultra");
    }

    /*//////////////////////////////////////////////////////////////
                         ETH RAIL: FEED CHECKS
    //////////////////////////////////////////////////////////////*/

    /// Both the view and the mint refuse: the named error, no token, no ether kept.
    function _assertEthMintReverts(bytes memory err) internal {
        vm.expectRevert(err);
        nft.priceInWei(0);
        uint256 before = alice.balance;
        vm.expectRevert(err);
        vm.prank(alice);
        nft.mint{value: 1 ether}("p", 0, 0, 1);
        vm.assertEq(alice.balance, before, "nothing charged");
        vm.assertEq(nft.nextTokenId(), 1, "nothing minted");
    }

    function test_RevertWhen_PriceStale() public {
        Feeds.makeStale(ethUsd, 1 hours + 1);
        _assertEthMintReverts(
            abi.encodeWithSelector(GenImNFT.StalePrice.selector, block.timestamp - 1 hours - 1, 1 hours)
        );
        Feeds.makeStale(ethUsd, 1 hours);
        vm.assertEq(nft.priceInWei(0), basicWei, "exactly max age old: accepted");
        _mintEth(alice, 0);
    }

    function test_RevertWhen_PriceNotPositive() public {
        Feeds.setPrice(ethUsd, 0);
        _assertEthMintReverts(abi.encodeWithSelector(GenImNFT.InvalidPrice.selector, int256(0)));
        Feeds.setPrice(ethUsd, -1);
        _assertEthMintReverts(abi.encodeWithSelector(GenImNFT.InvalidPrice.selector, int256(-1)));
    }

    /// A rate so low that the price in gwei does not fit the escrow's 48 bits.
    function test_RevertWhen_PriceOutOfRange() public {
        Feeds.setPrice(ethUsd, 1); // $0.00000001 per ether
        _assertEthMintReverts(abi.encodeWithSelector(GenImNFT.PriceOutOfRange.selector, BASIC_USD * 1e11));
    }

    function test_RevertWhen_SequencerDown() public {
        Feeds.sequencerDown(sequencer);
        _assertEthMintReverts(abi.encodeWithSelector(GenImNFT.SequencerDown.selector, block.timestamp));
    }

    /// Back up 60 s ago: ETH mints wait for the grace period to end after the restart, to the second.
    function test_RevertWhen_WithinGracePeriod() public {
        Feeds.sequencerUp(sequencer, 60);
        uint256 resumesAt = block.timestamp - 60 + nft.SEQUENCER_GRACE_PERIOD();
        _assertEthMintReverts(abi.encodeWithSelector(GenImNFT.SequencerGracePeriod.selector, resumesAt));
        vm.warp(resumesAt - 1);
        Feeds.setPrice(ethUsd, ETH_USD);
        _assertEthMintReverts(abi.encodeWithSelector(GenImNFT.SequencerGracePeriod.selector, resumesAt));
        vm.warp(resumesAt);
        _mintEth(alice, 0);
    }

    /// startedAt 0: the uptime feed has had no round yet; its status cannot be trusted.
    function test_RevertWhen_SequencerStartedAtZero() public {
        sequencer.updateRoundData(uint80(sequencer.latestRound() + 1), Feeds.UP, 0, 0);
        _assertEthMintReverts(abi.encodeWithSelector(GenImNFT.SequencerDown.selector, 0));
    }

    /// On a chain without a sequencer uptime feed (address zero), no sequencer check is made.
    function test_NoSequencerFeedNoSequencerCheck() public {
        GenImNFT other = _deployWith(owner, _one(oracle), address(usdc), address(ethUsd), address(0));
        Feeds.sequencerDown(sequencer);
        vm.assertEq(address(other.sequencerUptimeFeed()), address(0), "none");
        vm.prank(alice);
        other.mint{value: basicWei}("p", 0, 0, 1);
        vm.assertEq(address(other).balance, basicWei, "minted");
    }

    /// The USDC rail reads no feed: a stale answer or a sequencer down stops ETH mints only.
    function test_UsdcRailReadsNoFeed() public {
        Feeds.makeStale(ethUsd, 2 hours);
        Feeds.sequencerDown(sequencer);
        uint256 id = _mintUsdc(ALICE_KEY, 0, relayer);
        vm.assertEq(nft.ownerOf(id), alice, "minted in USDC");
    }

    function testFuzz_SetMaxPriceAgeBound(uint32 age) public {
        bool ok = age >= 1 minutes && age <= 1 days;
        if (!ok) {
            vm.expectRevert(abi.encodeWithSelector(GenImNFT.PriceAgeOutOfRange.selector, age, 1 minutes, 1 days));
        } else {
            vm.expectEmit(true, true, true, true);
            emit GenImNFT.MaxPriceAgeUpdated(age);
        }
        vm.prank(owner);
        nft.setMaxPriceAge(age);
        vm.assertEq(nft.timeout(), 1 hours, "timeout untouched");
        vm.assertEq(nft.feeBps(), FEE_BPS, "fee untouched");
        vm.assertEq(nft.oracleEpoch(), 1, "epoch untouched");
        if (!ok) {
            vm.assertEq(nft.maxPriceAge(), 1 hours, "unchanged");
            return;
        }
        vm.assertEq(nft.maxPriceAge(), age, "stored");
        Feeds.makeStale(ethUsd, age);
        vm.assertEq(nft.priceInWei(0), basicWei, "an answer exactly that old is accepted");
        Feeds.makeStale(ethUsd, uint256(age) + 1);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.StalePrice.selector, block.timestamp - age - 1, age));
        nft.priceInWei(0);
    }

    /*//////////////////////////////////////////////////////////////
                        ETH RAIL: THE RATE CACHE
    //////////////////////////////////////////////////////////////*/

    function _assertCache(int256 answer, uint256 updatedAt, uint256 checkedAt, string memory what) internal view {
        (uint256 cachedAnswer, uint256 cachedUpdatedAt, uint256 cachedCheckedAt) = nft.cachedRate();
        vm.assertEq(cachedAnswer, uint256(answer), what);
        vm.assertEq(cachedUpdatedAt, updatedAt, what);
        vm.assertEq(cachedCheckedAt, checkedAt, what);
    }

    /// A mint keeps the checked rate; mints in the next 59 seconds reuse it, even after the feed moves (and
    /// a view does not refresh it); the first mint 60 s after the read reads the feed again.
    function test_RateCachedForOneMinute() public {
        uint256 t0 = block.timestamp;
        _mintEth(alice, 0);
        _assertCache(ETH_USD, t0, t0, "cached at the first mint");
        vm.warp(t0 + 30);
        Feeds.setPrice(ethUsd, 2000 * Feeds.USD);
        vm.assertEq(nft.priceInWei(0), basicWei, "within the window: the cached rate");
        vm.warp(t0 + 59);
        uint256 id = _mintEth(alice, 0);
        vm.assertEq(nft.request(id).escrow, basicWei, "charged at the cached rate");
        _assertCache(ETH_USD, t0, t0, "not refreshed within the window");
        vm.warp(t0 + 60);
        vm.assertEq(nft.priceInWei(0), 50_000 gwei, "the window is over: the feed's rate");
        _assertCache(ETH_USD, t0, t0, "a view does not write the cache");
        id = _mintEth(alice, 0);
        vm.assertEq(nft.request(id).escrow, 50_000 gwei, "charged at the feed's new rate");
        _assertCache(2000 * Feeds.USD, t0 + 30, t0 + 60, "refreshed");
    }

    /// A cached answer that grows older than the bound within the window is not used: with no newer answer
    /// the mint reverts StalePrice (as the feed would make it); once the feed has a newer answer, the mint
    /// reads it at once rather than wait for the window to end.
    function test_RevertWhen_CachedAnswerGrowsStale() public {
        uint256 t0 = block.timestamp;
        Feeds.makeStale(ethUsd, 1 hours - 10);
        _mintEth(alice, 0);
        _assertCache(ETH_USD, t0 - 1 hours + 10, t0, "cached: 10 s from its age bound");
        vm.warp(t0 + 11);
        _assertEthMintRevertsAfter(abi.encodeWithSelector(GenImNFT.StalePrice.selector, t0 - 1 hours + 10, 1 hours), 1);
        Feeds.setPrice(ethUsd, 2000 * Feeds.USD);
        vm.assertEq(nft.priceInWei(0), 50_000 gwei, "a newer answer is read within the window");
        uint256 id = _mintEth(alice, 0);
        vm.assertEq(nft.request(id).escrow, 50_000 gwei, "charged at it");
        _assertCache(2000 * Feeds.USD, t0 + 11, t0 + 11, "and cached");
    }

    function _assertEthMintRevertsAfter(bytes memory err, uint256 minted) internal {
        vm.expectRevert(err);
        nft.priceInWei(0);
        vm.expectRevert(err);
        vm.prank(alice);
        nft.mint{value: 1 ether}("p", 0, 0, 1);
        vm.assertEq(nft.nextTokenId(), minted + 1, "nothing more minted");
    }

    /// Documented behaviour: within the window the cached rate stands without a new sequencer read, so a
    /// sequencer that went down after the read stops ETH mints only once the window ends.
    function test_CachedRateSkipsSequencerWithinWindow() public {
        uint256 t0 = block.timestamp;
        _mintEth(alice, 0);
        vm.warp(t0 + 20);
        Feeds.sequencerDown(sequencer);
        _mintEth(alice, 0);
        vm.warp(t0 + 60);
        _assertEthMintRevertsAfter(abi.encodeWithSelector(GenImNFT.SequencerDown.selector, t0 + 20), 2);
    }

    /*//////////////////////////////////////////////////////////////
                           USDC RAIL: PAYING
    //////////////////////////////////////////////////////////////*/

    /// A relayer sends it; exactly the price moves from the buyer to the contract; the token, the escrow and
    /// the event are the buyer's; the relayer pays and holds nothing.
    function _assertPaidInUsdc(uint256 id, uint8 tier, uint256 startBalance) internal view {
        uint256 price = nft.price(tier);
        GenImNFT.Request memory r = nft.request(id);
        vm.assertEq(nft.ownerOf(id), alice, "minted to `from`");
        vm.assertEq(uint256(r.asset), uint256(GenImNFT.Asset.USDC), "asset");
        vm.assertEq(r.escrow, price, "escrow is the price in USDC units");
        vm.assertEq(r.tier, tier, "tier");
        vm.assertEq(usdc.balanceOf(alice), startBalance - price, "exactly the price pulled");
        vm.assertEq(usdc.balanceOf(address(nft)), price, "arrived");
        vm.assertEq(nft.usdcLiabilities(), price, "booked");
        vm.assertEq(nft.balanceOf(relayer), 0, "the relayer holds no token");
        vm.assertEq(usdc.balanceOf(relayer), 0, "the relayer paid no USDC");
        vm.assertEq(address(nft).balance, 0, "no ether involved");
    }

    function test_MintWithAuthorization_VRS() public {
        Usdc.mint(usdc, alice, DOLLAR);
        bytes32 nonce = _nonce();
        (uint8 v, bytes32 r, bytes32 s) =
            Usdc.signTransfer(usdc, ALICE_KEY, address(nft), PREMIUM_USD, 0, FOREVER, nonce);
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.ImageRequested(
            1, alice, 1, 2, GenImNFT.Asset.USDC, PREMIUM_USD, uint40(block.timestamp + 1 hours), "a red fox"
        );
        vm.prank(relayer);
        uint256 id = nft.mintWithAuthorization("a red fox", 1, 2, 1, alice, 0, FOREVER, nonce, v, r, s);
        _assertPaidInUsdc(id, 1, DOLLAR);
        vm.assertTrue(usdc.authorizationState(alice, nonce), "authorization used");
    }

    function test_MintWithAuthorization_Bytes() public {
        Usdc.mint(usdc, alice, DOLLAR);
        bytes32 nonce = _nonce();
        uint256 validAfter = block.timestamp - 1;
        uint256 validBefore = block.timestamp + 10 minutes;
        bytes memory sig =
            Usdc.signTransferPacked(usdc, ALICE_KEY, address(nft), ULTRA_USD, validAfter, validBefore, nonce);
        vm.prank(relayer);
        uint256 id = nft.mintWithAuthorization("p", 2, 0, 1, alice, validAfter, validBefore, nonce, sig);
        _assertPaidInUsdc(id, 2, DOLLAR);
    }

    /// Alice's authorization `sig` (for `tier`'s price, with this window) sent by the relayer: USDC refuses it
    /// with `reason`, and the mint reverts with that reason as it is.
    function _expectUsdcRefusal(
        uint8 tier,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory sig,
        string memory reason
    ) internal {
        vm.expectRevert(bytes(reason));
        vm.prank(relayer);
        nft.mintWithAuthorization("p", tier, 0, 1, alice, validAfter, validBefore, nonce, sig);
    }

    /// Each authorization USDC refuses makes the mint revert with USDC's own reason; nothing is minted or
    /// moved, the books stay empty, and the nonce stays unused for the good authorization.
    function test_RevertWhen_UsdcRefusesTheAuthorization() public {
        Usdc.mint(usdc, alice, BASIC_USD);
        uint256 t = block.timestamp;
        bytes32 nonce = _nonce();
        string memory invalid = "FiatTokenV2: invalid signature";
        _expectUsdcRefusal(0, 0, FOREVER, nonce, _authorize(ALICE_KEY, BASIC_USD - 1, nonce), invalid);
        _expectUsdcRefusal(0, 0, FOREVER, nonce, _authorize(BOB_KEY, BASIC_USD, nonce), invalid);
        bytes memory sig = Usdc.signTransferPacked(usdc, ALICE_KEY, relayer, BASIC_USD, 0, FOREVER, nonce);
        _expectUsdcRefusal(0, 0, FOREVER, nonce, sig, invalid);
        sig = Usdc.signTransferPacked(usdc, ALICE_KEY, address(nft), BASIC_USD, 0, t, nonce);
        _expectUsdcRefusal(0, 0, t, nonce, sig, "FiatTokenV2: authorization is expired");
        sig = Usdc.signTransferPacked(usdc, ALICE_KEY, address(nft), BASIC_USD, t, FOREVER, nonce);
        _expectUsdcRefusal(0, t, FOREVER, nonce, sig, "FiatTokenV2: authorization is not yet valid");
        // A valid authorization for more than the buyer holds.
        sig = _authorize(ALICE_KEY, PREMIUM_USD, nonce);
        _expectUsdcRefusal(1, 0, FOREVER, nonce, sig, "ERC20: transfer amount exceeds balance");
        sig = _authorize(ALICE_KEY, BASIC_USD, nonce);
        vm.prank(usdcOwner);
        usdc.blacklist(alice);
        _expectUsdcRefusal(0, 0, FOREVER, nonce, sig, "Blacklistable: account is blacklisted");
        vm.startPrank(usdcOwner);
        usdc.unBlacklist(alice);
        usdc.pause();
        vm.stopPrank();
        _expectUsdcRefusal(0, 0, FOREVER, nonce, sig, "Pausable: paused");
        vm.prank(usdcOwner);
        usdc.unpause();

        vm.assertEq(nft.nextTokenId(), 1, "nothing minted");
        vm.assertEq(nft.usdcLiabilities(), 0, "nothing booked");
        vm.assertEq(usdc.balanceOf(alice), BASIC_USD, "nothing moved");
        vm.assertFalse(usdc.authorizationState(alice, nonce), "the nonce is still unused");
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, sig);
        vm.assertEq(usdc.balanceOf(address(nft)), BASIC_USD, "the good one pays");
    }

    /// The `v, r, s` form passes USDC's refusal on as well.
    function test_RevertWhen_UsdcRefusesTheAuthorization_VRS() public {
        bytes32 nonce = _nonce();
        (uint8 v, bytes32 r, bytes32 s) = Usdc.signTransfer(usdc, ALICE_KEY, address(nft), BASIC_USD, 0, FOREVER, nonce);
        vm.expectRevert(bytes("ERC20: transfer amount exceeds balance"));
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, v, r, s);
        Usdc.mint(usdc, alice, BASIC_USD);
        (v, r, s) = Usdc.signTransfer(usdc, BOB_KEY, address(nft), BASIC_USD, 0, FOREVER, nonce);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, v, r, s);
    }

    /// The same authorization again: USDC refuses the used nonce, and with no unbooked USDC in the contract
    /// there is nothing to mint against.
    function test_RevertWhen_AuthorizationReplayed() public {
        Usdc.mint(usdc, alice, DOLLAR);
        bytes32 nonce = _nonce();
        (uint8 v, bytes32 r, bytes32 s) = Usdc.signTransfer(usdc, ALICE_KEY, address(nft), BASIC_USD, 0, FOREVER, nonce);
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, v, r, s);
        bytes memory notReceived =
            abi.encodeWithSelector(GenImNFT.PaymentNotReceived.selector, alice, nonce, BASIC_USD, 2 * BASIC_USD);
        vm.expectRevert(notReceived);
        vm.prank(relayer);
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, v, r, s);
        vm.expectRevert(notReceived);
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, abi.encodePacked(r, s, v));
        vm.assertEq(nft.nextTokenId(), 2, "one token");
        vm.assertEq(usdc.balanceOf(alice), DOLLAR - BASIC_USD, "paid once");
    }

    /*//////////////////////////////////////////////////////////////
                USDC RAIL: AN AUTHORIZATION EXECUTED FIRST
    //////////////////////////////////////////////////////////////*/

    /// Mallory copies alice's authorization from the mempool and executes it in USDC directly: the USDC
    /// arrives with no token. Alice's mint still goes through, once, in either form, to alice.
    function test_FrontRunAuthorizationStillMintsOnce() public {
        Usdc.mint(usdc, alice, DOLLAR);
        bytes32 nonce = _nonce();
        (uint8 v, bytes32 r, bytes32 s) =
            Usdc.signTransfer(usdc, ALICE_KEY, address(nft), PREMIUM_USD, 0, FOREVER, nonce);
        vm.prank(mallory);
        usdc.transferWithAuthorization(alice, address(nft), PREMIUM_USD, 0, FOREVER, nonce, v, r, s);
        vm.assertEq(usdc.balanceOf(address(nft)), PREMIUM_USD, "arrived, with no token");
        vm.assertEq(_unbookedUsdc(), PREMIUM_USD, "unbooked");

        vm.prank(relayer);
        uint256 id = nft.mintWithAuthorization("p", 1, 0, 1, alice, 0, FOREVER, nonce, v, r, s);
        _assertPaidInUsdc(id, 1, DOLLAR);
        vm.assertEq(_unbookedUsdc(), 0, "booked now");

        bytes memory used = abi.encodeWithSelector(GenImNFT.AuthorizationNotUsable.selector, alice, nonce);
        vm.expectRevert(used);
        nft.mintWithAuthorization("p", 1, 0, 1, alice, 0, FOREVER, nonce, v, r, s);
        vm.expectRevert(used);
        nft.mintWithAuthorization("p", 1, 0, 1, alice, 0, FOREVER, nonce, abi.encodePacked(r, s, v));
        // Even with unbooked USDC to draw on, the claimed authorization does not mint twice.
        Usdc.mint(usdc, address(nft), PREMIUM_USD);
        vm.expectRevert(used);
        nft.mintWithAuthorization("p", 1, 0, 1, alice, 0, FOREVER, nonce, v, r, s);
        vm.assertEq(nft.nextTokenId(), 2, "one token");
    }

    function test_FrontRunAuthorizationStillMints_Bytes() public {
        Usdc.mint(usdc, alice, DOLLAR);
        bytes32 nonce = _nonce();
        bytes memory sig = _authorize(ALICE_KEY, BASIC_USD, nonce);
        vm.prank(mallory);
        usdc.transferWithAuthorization(alice, address(nft), BASIC_USD, 0, FOREVER, nonce, sig);
        vm.prank(relayer);
        uint256 id = nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, sig);
        _assertPaidInUsdc(id, 0, DOLLAR);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.AuthorizationNotUsable.selector, alice, nonce));
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, sig);
    }

    /// A used nonce whose signature does not match the mint's terms mints nothing: the executed payment was
    /// for another value (another tier's price), or went to someone else, or the signature is not alice's.
    function test_RevertWhen_ExecutedAuthorizationForOtherTerms() public {
        Usdc.mint(usdc, alice, DOLLAR);
        bytes32 nonce = _nonce();
        bytes memory sig = _authorize(ALICE_KEY, BASIC_USD, nonce);
        usdc.transferWithAuthorization(alice, address(nft), BASIC_USD, 0, FOREVER, nonce, sig);
        Usdc.mint(usdc, address(nft), DOLLAR); // unbooked USDC to draw on, so only the signature can refuse
        bytes memory notUsable = abi.encodeWithSelector(GenImNFT.AuthorizationNotUsable.selector, alice, nonce);
        vm.expectRevert(notUsable);
        nft.mintWithAuthorization("p", 1, 0, 1, alice, 0, FOREVER, nonce, sig); // premium: another value
        vm.expectRevert(notUsable);
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, _authorize(BOB_KEY, BASIC_USD, nonce));

        bytes32 toBob = _nonce();
        bytes memory paidBob = Usdc.signTransferPacked(usdc, ALICE_KEY, bob, BASIC_USD, 0, FOREVER, toBob);
        usdc.transferWithAuthorization(alice, bob, BASIC_USD, 0, FOREVER, toBob, paidBob);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.AuthorizationNotUsable.selector, alice, toBob));
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, toBob, paidBob);
        vm.assertEq(nft.nextTokenId(), 1, "nothing minted");
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, sig);
        vm.assertEq(nft.ownerOf(1), alice, "the right terms mint");
    }

    /// What the contract guarantees for a cancelled authorization: USDC marks a cancelled nonce used, as it
    /// marks an executed one, and the contract cannot tell them apart. With no unbooked USDC in the contract
    /// (the ordinary case) the mint reverts PaymentNotReceived: nothing is minted without its payment.
    function test_RevertWhen_CancelledAuthorizationWithNothingUnbooked() public {
        _mintUsdc(BOB_KEY, 0, relayer); // some booked USDC: none of it can back alice's token
        Usdc.mint(usdc, alice, DOLLAR);
        bytes32 nonce = _nonce();
        bytes memory sig = _authorize(ALICE_KEY, BASIC_USD, nonce);
        (uint8 v, bytes32 r, bytes32 s) = Usdc.signCancel(usdc, ALICE_KEY, nonce);
        usdc.cancelAuthorization(alice, nonce, v, r, s);
        vm.expectRevert(
            abi.encodeWithSelector(GenImNFT.PaymentNotReceived.selector, alice, nonce, BASIC_USD, 2 * BASIC_USD)
        );
        vm.prank(relayer);
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, sig);
        vm.assertEq(nft.nextTokenId(), 2, "only bob's token");
        vm.assertEq(usdc.balanceOf(alice), DOLLAR, "alice paid nothing");
        vm.assertEq(usdc.balanceOf(address(nft)), nft.usdcLiabilities(), "books exact");
    }

    /// The limit of that guarantee, documented: USDC that arrived outside a mint (an authorization someone
    /// executed directly, or a plain transfer) is one unbooked pool, and the first mint whose authorization
    /// USDC reports used and whose signature matches draws on it: a cancelled authorization, or the replay
    /// of one that already minted, as well as the front-run buyer's own. Solvency always holds (every token's
    /// escrow is USDC the contract holds); what is not guaranteed is whose mint the unbooked USDC backs.
    function test_UnbookedUsdcBacksTheFirstUsedAuthorization() public {
        // Bob's authorization is executed directly: his USDC is in the contract, unbooked.
        Usdc.mint(usdc, bob, DOLLAR);
        bytes32 bobNonce = _nonce();
        bytes memory bobSig = _authorize(BOB_KEY, BASIC_USD, bobNonce);
        vm.prank(mallory);
        usdc.transferWithAuthorization(bob, address(nft), BASIC_USD, 0, FOREVER, bobNonce, bobSig);
        // Alice signs an authorization and cancels it, then mints with it before bob does.
        bytes32 nonce = _nonce();
        bytes memory sig = _authorize(ALICE_KEY, BASIC_USD, nonce);
        usdc.cancelAuthorization(alice, nonce, Usdc.signCancelPacked(usdc, ALICE_KEY, nonce));
        uint256 id = nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, sig);
        vm.assertEq(nft.ownerOf(id), alice, "a cancelled authorization minted on bob's USDC");
        vm.assertEq(usdc.balanceOf(alice), 0, "alice paid nothing");
        vm.assertEq(usdc.balanceOf(address(nft)), nft.usdcLiabilities(), "solvent, and exact");
        vm.expectRevert(
            abi.encodeWithSelector(GenImNFT.PaymentNotReceived.selector, bob, bobNonce, BASIC_USD, 2 * BASIC_USD)
        );
        nft.mintWithAuthorization("p", 0, 0, 1, bob, 0, FOREVER, bobNonce, bobSig);

        // The same holds for a replay of an authorization that minted through the ordinary path.
        Usdc.mint(usdc, address(nft), BASIC_USD); // a plain transfer: unbooked again
        bytes32 aliceUsed = _nonce();
        Usdc.mint(usdc, alice, BASIC_USD);
        bytes memory aliceSig = _authorize(ALICE_KEY, BASIC_USD, aliceUsed);
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, aliceUsed, aliceSig);
        nft.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, aliceUsed, aliceSig);
        vm.assertEq(nft.balanceOf(alice), 3, "the replay minted on the unbooked USDC");
        vm.assertEq(usdc.balanceOf(address(nft)), nft.usdcLiabilities(), "still solvent and exact");
    }

    /*//////////////////////////////////////////////////////////////
                    USDC RAIL: SMART WALLETS, NO RAIL
    //////////////////////////////////////////////////////////////*/

    /// A smart-wallet buyer signs through ERC-1271 in the `bytes` form: USDC asks the wallet, the token is
    /// the wallet's, and its refund comes back to it in USDC. If the authorization was executed first, the
    /// contract asks the wallet itself and still mints once.
    function test_SmartWalletBuyerPaysWithBytes() public {
        SmartWallet wallet = new SmartWallet(vm.addr(WALLET_KEY));
        Usdc.mint(usdc, address(wallet), DOLLAR);
        bytes32 nonce = _nonce();
        bytes32 digest = Usdc.authorizationDigest(
            usdc, Usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH, address(wallet), address(nft), ULTRA_USD, 0, FOREVER, nonce
        );
        bytes memory bare = Usdc.signPacked(WALLET_KEY, digest);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        nft.mintWithAuthorization("p", 2, 0, 1, address(wallet), 0, FOREVER, nonce, bare);

        bytes memory sig = Usdc.signPacked(WALLET_KEY, wallet.wrap(digest));
        vm.prank(relayer);
        uint256 id = nft.mintWithAuthorization("p", 2, 0, 1, address(wallet), 0, FOREVER, nonce, sig);
        vm.assertEq(nft.ownerOf(id), address(wallet), "the wallet's token");
        vm.assertEq(usdc.balanceOf(address(wallet)), DOLLAR - ULTRA_USD, "the wallet paid");
        vm.warp(block.timestamp + 1 hours);
        nft.refund(id);
        vm.assertEq(usdc.balanceOf(address(wallet)), DOLLAR, "refunded to the wallet, in USDC");

        bytes32 second = _nonce();
        digest = Usdc.authorizationDigest(
            usdc,
            Usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH,
            address(wallet),
            address(nft),
            BASIC_USD,
            0,
            FOREVER,
            second
        );
        sig = Usdc.signPacked(WALLET_KEY, wallet.wrap(digest));
        vm.prank(mallory);
        usdc.transferWithAuthorization(address(wallet), address(nft), BASIC_USD, 0, FOREVER, second, sig);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.AuthorizationNotUsable.selector, address(wallet), second));
        nft.mintWithAuthorization("p", 0, 0, 1, address(wallet), 0, FOREVER, second, bare);
        id = nft.mintWithAuthorization("p", 0, 0, 1, address(wallet), 0, FOREVER, second, sig);
        vm.assertEq(nft.ownerOf(id), address(wallet), "minted after the front-run, through ERC-1271");
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.AuthorizationNotUsable.selector, address(wallet), second));
        nft.mintWithAuthorization("p", 0, 0, 1, address(wallet), 0, FOREVER, second, sig);
    }

    /// A deployment without USDC (address zero) refuses the USDC rail; its ETH rail works.
    function test_RevertWhen_UsdcRailDisabled() public {
        GenImNFT other = _deployWith(owner, _one(oracle), address(0), address(ethUsd), address(sequencer));
        bytes32 nonce = _nonce();
        vm.expectRevert(GenImNFT.UsdcRailDisabled.selector);
        other.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, _authorize(ALICE_KEY, BASIC_USD, nonce));
        vm.expectRevert(GenImNFT.UsdcRailDisabled.selector);
        other.mintWithAuthorization("p", 0, 0, 1, alice, 0, FOREVER, nonce, 27, bytes32(0), bytes32(0));
        vm.prank(alice);
        other.mint{value: basicWei}("p", 0, 0, 1);
        vm.assertEq(other.nextTokenId(), 2, "the ETH rail works");
    }
}
