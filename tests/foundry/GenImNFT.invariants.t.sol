// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/shared/mocks/MockV3Aggregator.sol";
import {GenImNFT} from "../../contracts/GenImNFT.sol";
import {Feeds} from "./utils/Feeds.sol";
import {GenImNFTSetup} from "./utils/GenImNFTSetup.sol";
import {VM, Vm} from "./utils/Test.sol";
import {IFiatToken, Usdc} from "./utils/Usdc.sol";

/// @dev A holder that refuses ether: refunds of its ETH tokens must land as its credit, which it recovers with
/// withdrawTo.
contract Refuser {
    receive() external payable {
        revert("no ether");
    }
}

/// @dev Drives the contract through random sequences on both rails: ETH mints (at the feed's rate, which moves,
/// goes stale, and stops with the sequencer) and USDC mints (relayed, in both signature forms), authorizations
/// someone executes in USDC first and that mint later, cancelled authorizations, mints naming a stale oracle
/// epoch, the owner authorising itself or a newcomer right before a mint, images, refunds, transfers (to a
/// contract that refuses ether, to the NFT contract), USDC blacklisting, withdrawals and withdrawTo, settings
/// and time; it keeps ghost books, per asset, of what must hold. Every account tries to settle every pending
/// token. A check that fails inside a handler (a token without its payment, an image set by an oracle the
/// buyer never consented to, after its deadline, twice; a refund past the deadline that reverts...) is counted,
/// and the invariants assert the counts are zero, because the invariant runner does not fail on a handler's
/// reverts.
contract Handler {
    Vm internal constant vm = VM;
    uint256 internal constant ETH = 0;
    uint256 internal constant USDC = 1;
    uint256 internal constant FIRST_BUYER_KEY = 100;

    /// @dev An authorization someone executed in USDC directly, waiting for its mint.
    struct Executed {
        uint256 key;
        address from;
        uint8 tier;
        uint256 value;
        bytes32 nonce;
        bytes signature;
    }

    GenImNFT public immutable nft;
    IFiatToken public immutable usdc;
    MockV3Aggregator public immutable ethUsd;
    MockV3Aggregator public immutable sequencer;
    address public immutable owner;
    address public immutable usdcOwner;
    Refuser public immutable refuser;
    address public immutable mallory = vm.addr(66);
    address[4] public buyers;
    // Everyone who may try to settle: the owner, the two initial oracles, a newcomer the owner may
    // authorise at any time, and the buyers.
    address[8] public accounts;

    uint256[] public ids;
    mapping(uint256 tokenId => uint256) public ghostEscrow;
    mapping(uint256 tokenId => uint256) public ghostDeadline;
    mapping(uint256 tokenId => uint8) public ghostTier;
    mapping(uint256 tokenId => uint8) public ghostAspect;
    mapping(uint256 tokenId => uint256) public ghostAsset;
    mapping(uint256 tokenId => bytes32) public ghostDigest;
    mapping(uint256 tokenId => bool) public ghostRefundedToken;
    // The first token id each account may settle, as the handler's own record of authorisations: 0 while
    // not authorised.
    mapping(address account => uint256) public ghostServesFrom;
    mapping(address account => uint256[2]) internal _ghostEarned;
    uint256 public ghostEpoch;

    // Per asset (0 ETH, 1 USDC).
    uint256[2] internal _ghostMinted;
    uint256[2] internal _ghostFulfilled;
    uint256[2] internal _ghostRefunded; // every escrow refunded, paid or credited
    uint256[2] internal _ghostRefundsPaid; // the part that left the books as a payment
    uint256[2] internal _ghostWithdrawn;
    uint256[2] internal _ghostFees;
    uint256[2] internal _ghostOwnerWithdrawn;
    uint256[2] internal _ghostPaidInMint; // what arrived in the contract's balance during the mints
    // USDC that arrived outside a mint (authorizations executed directly, a refund the contract paid itself),
    // and the part of it that mints drew on.
    uint256 public ghostUsdcArrivedOutside;
    uint256 public ghostUsdcDrawnByMints;

    Executed[] internal _executed;
    mapping(bytes32 authorization => bool) public ghostClaimed;
    uint256 internal _nonces;

    uint256 public calls;
    uint256 public violations;
    uint256 public paymentViolations;
    uint256 public consentViolations;
    uint256 public refundFailures;
    uint256 public images;
    uint256 public refunds;
    uint256 public refusedSettlements;
    uint256 public ethMints;
    uint256 public usdcMints;
    uint256 public frontRunMints;
    uint256 public cancelledMints;
    uint256 public cancelledRefused;
    uint256 public staleEpochRefused;
    uint256 public feedRefusals;
    uint256 public usdcRefunds;

    constructor(GenImNFT nft_, IFiatToken usdc_, address usdcOwner_, address[2] memory oracles_) {
        nft = nft_;
        usdc = usdc_;
        usdcOwner = usdcOwner_;
        ethUsd = MockV3Aggregator(address(nft_.ethUsdFeed()));
        sequencer = MockV3Aggregator(address(nft_.sequencerUptimeFeed()));
        owner = nft_.owner();
        refuser = new Refuser();
        for (uint256 i; i < 4; ++i) {
            buyers[i] = vm.addr(FIRST_BUYER_KEY + i);
            vm.deal(buyers[i], 1_000 ether);
        }
        accounts = [owner, oracles_[0], oracles_[1], vm.addr(4), buyers[0], buyers[1], buyers[2], buyers[3]];
        ghostServesFrom[oracles_[0]] = 1;
        ghostServesFrom[oracles_[1]] = 1;
        ghostEpoch = nft_.oracleEpoch();
    }

    modifier counted() {
        ++calls;
        _;
    }

    /*//////////////////////////////////////////////////////////////
                                GHOST VIEWS
    //////////////////////////////////////////////////////////////*/

    function idCount() external view returns (uint256) {
        return ids.length;
    }

    function ghostMinted(uint256 asset) external view returns (uint256) {
        return _ghostMinted[asset];
    }

    function ghostFulfilled(uint256 asset) external view returns (uint256) {
        return _ghostFulfilled[asset];
    }

    function ghostRefunded(uint256 asset) external view returns (uint256) {
        return _ghostRefunded[asset];
    }

    function ghostRefundsPaid(uint256 asset) external view returns (uint256) {
        return _ghostRefundsPaid[asset];
    }

    function ghostWithdrawn(uint256 asset) external view returns (uint256) {
        return _ghostWithdrawn[asset];
    }

    function ghostFees(uint256 asset) external view returns (uint256) {
        return _ghostFees[asset];
    }

    function ghostOwnerWithdrawn(uint256 asset) external view returns (uint256) {
        return _ghostOwnerWithdrawn[asset];
    }

    function ghostPaidInMint(uint256 asset) external view returns (uint256) {
        return _ghostPaidInMint[asset];
    }

    function ghostEarned(address account, uint256 asset) external view returns (uint256) {
        return _ghostEarned[account][asset];
    }

    function _pickId(uint256 seed) internal view returns (uint256) {
        return ids.length == 0 ? 1 : ids[seed % ids.length];
    }

    function _unbooked() internal view returns (uint256) {
        return usdc.balanceOf(address(nft)) - nft.usdcLiabilities();
    }

    /*//////////////////////////////////////////////////////////////
                                   MINTS
    //////////////////////////////////////////////////////////////*/

    /// @dev A mint that went through: it must have named the epoch of its block; the books learn its terms.
    function _recordMint(uint256 id, uint256 asset, uint256 escrow, uint8 tier, uint8 aspect, uint256 named) internal {
        if (named != ghostEpoch) ++consentViolations; // minted under an oracle set its buyer never saw
        if (id != ids.length + 1) ++violations;
        ids.push(id);
        ghostEscrow[id] = escrow;
        ghostDeadline[id] = block.timestamp + nft.timeout();
        ghostTier[id] = tier;
        ghostAspect[id] = aspect;
        ghostAsset[id] = asset;
        _ghostMinted[asset] += escrow;
    }

    /// @dev One epoch in four is the one before the current (a buyer who read it before an authorisation).
    function _namedEpoch(uint256 seed) internal view returns (uint256) {
        return seed % 4 == 0 && ghostEpoch > 0 ? ghostEpoch - 1 : ghostEpoch;
    }

    /// @dev `buyer` mints on the ETH rail, paying priceInWei plus `excess`, naming `epoch`.
    function _mintEth(address buyer, uint8 tier, uint8 aspect, uint256 excess, uint256 epoch) internal {
        uint256 price;
        try nft.priceInWei(tier) returns (uint256 p) {
            price = p;
        } catch {
            ++feedRefusals; // stale, sequencer down or in its grace period: the mint must refuse too
        }
        uint256 buyerBefore = buyer.balance;
        uint256 held = address(nft).balance;
        vm.prank(buyer);
        try nft.mint{value: price + excess}("an image", tier, aspect, epoch) returns (uint256 id) {
            // The ETH it charged arrived, as the escrow; the excess went back.
            if (address(nft).balance != held + price || buyer.balance != buyerBefore - price) ++paymentViolations;
            if (price == 0 || nft.request(id).escrow != price) ++paymentViolations;
            _ghostPaidInMint[ETH] += address(nft).balance - held;
            _recordMint(id, ETH, price, tier, aspect, epoch);
            ++ethMints;
        } catch {
            if (epoch != ghostEpoch) ++staleEpochRefused;
        }
    }

    /// @dev The buyer with key `key` signs an authorization for `tier`'s price, with a fresh nonce.
    function _authorization(uint256 key, uint8 tier) internal returns (Executed memory auth) {
        auth.key = key;
        auth.from = vm.addr(key);
        auth.tier = tier;
        auth.value = nft.price(tier);
        auth.nonce = keccak256(abi.encode("handler nonce", ++_nonces));
        auth.signature = Usdc.signTransferPacked(usdc, key, address(nft), auth.value, 0, type(uint256).max, auth.nonce);
    }

    function _fund(address buyer, uint256 amount) internal {
        if (amount != 0 && !usdc.isBlacklisted(buyer)) Usdc.mint(usdc, buyer, amount);
    }

    /// @dev `relayer` sends the authorization's mint (in the `v, r, s` form or the `bytes` form); `id` 0: it
    /// reverted.
    function _sendUsdcMint(Executed memory auth, uint8 aspect, uint256 epoch, address relayer, bool vrs)
        internal
        returns (bool ok, uint256 id)
    {
        vm.prank(relayer);
        id = vrs ? _sendVrs(auth, aspect, epoch) : _sendBytes(auth, aspect, epoch);
        ok = id != 0;
    }

    function _sendVrs(Executed memory auth, uint8 aspect, uint256 epoch) internal returns (uint256) {
        (bytes32 r, bytes32 s) = abi.decode(auth.signature, (bytes32, bytes32));
        uint8 v = uint8(auth.signature[64]);
        try nft.mintWithAuthorization(
            "an image", auth.tier, aspect, epoch, auth.from, 0, type(uint256).max, auth.nonce, v, r, s
        ) returns (
            uint256 minted
        ) {
            return minted;
        } catch {
            return 0;
        }
    }

    function _sendBytes(Executed memory auth, uint8 aspect, uint256 epoch) internal returns (uint256) {
        try nft.mintWithAuthorization(
            "an image", auth.tier, aspect, epoch, auth.from, 0, type(uint256).max, auth.nonce, auth.signature
        ) returns (
            uint256 minted
        ) {
            return minted;
        } catch {
            return 0;
        }
    }

    function mintEth(uint256 buyerSeed, uint8 tierSeed, uint96 excess, uint256 epochSeed) external counted {
        _mintEth(
            buyers[buyerSeed % 4], tierSeed % 3, uint8(buyerSeed >> 8) % 4, excess % 1 ether, _namedEpoch(epochSeed)
        );
    }

    /// @dev A buyer signs for the price and a relayer (or the buyer) sends it.
    function mintUsdc(uint256 buyerSeed, uint8 tierSeed, uint256 relayerSeed, uint256 epochSeed) external counted {
        Executed memory auth = _authorization(FIRST_BUYER_KEY + buyerSeed % 4, tierSeed % 3);
        address from = auth.from;
        _fund(from, auth.value);
        address relayer = relayerSeed % 2 == 0 ? from : accounts[relayerSeed % 8];
        _mintUsdc(auth, uint8(buyerSeed >> 8) % 4, _namedEpoch(epochSeed), relayer, relayerSeed % 3 == 0);
    }

    /// @dev A USDC mint on a fresh authorization: exactly the price arrives in the transaction, from the buyer,
    /// who gets the token.
    function _mintUsdc(Executed memory auth, uint8 aspect, uint256 epoch, address relayer, bool vrs) internal {
        address from = auth.from;
        uint256 fromBefore = usdc.balanceOf(from);
        uint256 held = usdc.balanceOf(address(nft));
        (bool ok, uint256 id) = _sendUsdcMint(auth, aspect, epoch, relayer, vrs);
        if (!ok) {
            if (epoch != ghostEpoch) ++staleEpochRefused;
            return;
        }
        uint256 arrived = usdc.balanceOf(address(nft)) - held;
        if (arrived != auth.value || auth.value == 0) ++paymentViolations;
        if (usdc.balanceOf(from) != fromBefore - auth.value || nft.ownerOf(id) != from) ++paymentViolations;
        _ghostPaidInMint[USDC] += arrived;
        _recordMint(id, USDC, auth.value, auth.tier, aspect, epoch);
        ++usdcMints;
    }

    /// @dev Mallory copies a buyer's authorization and executes it in USDC directly: the USDC arrives with no
    /// token; the authorization waits for its mint.
    function frontRun(uint256 buyerSeed, uint8 tierSeed) external counted {
        Executed memory auth = _authorization(FIRST_BUYER_KEY + buyerSeed % 4, tierSeed % 3);
        address from = auth.from;
        if (auth.value == 0 || usdc.isBlacklisted(from)) return;
        _fund(from, auth.value);
        vm.prank(mallory);
        usdc.transferWithAuthorization(from, address(nft), auth.value, 0, type(uint256).max, auth.nonce, auth.signature);
        ghostUsdcArrivedOutside += auth.value;
        _executed.push(auth);
    }

    /// @dev A mint for an authorization someone executed first, sent later by anyone: it mints once, only
    /// while the price still matches what was signed, and only on USDC that arrived and no one's books hold.
    function mintExecuted(uint256 seed, uint256 relayerSeed, uint256 epochSeed) external counted {
        if (_executed.length == 0) return;
        Executed memory auth = _executed[seed % _executed.length];
        bytes32 key = keccak256(abi.encode(auth.from, auth.nonce));
        _mintOnUnbooked(auth, key, relayerSeed, _namedEpoch(epochSeed));
    }

    /// @dev A buyer signs an authorization, cancels it in USDC, and mints with it. With no unbooked USDC it
    /// must revert; with some (a front-run authorization not yet minted), it draws on it, as documented.
    function cancelThenMint(uint256 buyerSeed, uint8 tierSeed, uint256 relayerSeed) external counted {
        Executed memory auth = _authorization(FIRST_BUYER_KEY + buyerSeed % 4, tierSeed % 3);
        if (auth.value == 0) return;
        address from = auth.from;
        usdc.cancelAuthorization(from, auth.nonce, Usdc.signCancelPacked(usdc, auth.key, auth.nonce));
        bool couldDraw = _unbooked() >= auth.value;
        bytes32 key = keccak256(abi.encode(from, auth.nonce));
        if (_mintOnUnbooked(auth, key, relayerSeed, ghostEpoch)) ++cancelledMints;
        else if (!couldDraw) ++cancelledRefused;
    }

    /// @dev Sends a mint whose authorization USDC reports used; it may only mint once per authorization, with
    /// the USDC already there (no USDC moves), and only if that much is unbooked.
    function _mintOnUnbooked(Executed memory auth, bytes32 key, uint256 relayerSeed, uint256 epoch)
        internal
        returns (bool ok)
    {
        uint256 unbooked = _unbooked();
        uint256 held = usdc.balanceOf(address(nft));
        uint256 id;
        (ok, id) = _sendUsdcMint(auth, 0, epoch, accounts[relayerSeed % 8], relayerSeed % 2 == 0);
        if (!ok) {
            if (epoch != ghostEpoch) ++staleEpochRefused;
            return false;
        }
        if (ghostClaimed[key] || unbooked < auth.value || usdc.balanceOf(address(nft)) != held) ++paymentViolations;
        if (nft.ownerOf(id) != auth.from) ++paymentViolations;
        ghostClaimed[key] = true;
        ghostUsdcDrawnByMints += auth.value;
        _recordMint(id, USDC, auth.value, auth.tier, 0, epoch);
        ++frontRunMints;
    }

    /// @dev ConsentAtMint: a buyer reads the epoch; in the same block, before the buyer's mint, the owner
    /// authorises itself or the newcomer (revoking it first if it was authorised, so the set grows). The mint
    /// naming what the buyer read must revert; a mint naming the new epoch goes through, and the new oracle
    /// can settle only that one.
    function authoriseThenMint(uint256 whoSeed, uint256 buyerSeed, uint8 tierSeed, bool inUsdc) external counted {
        address who = whoSeed % 2 == 0 ? owner : accounts[3];
        uint256 seen = ghostEpoch;
        vm.startPrank(owner);
        if (ghostServesFrom[who] != 0) nft.setOracle(who, false);
        nft.setOracle(who, true);
        vm.stopPrank();
        ghostServesFrom[who] = nft.nextTokenId();
        ++ghostEpoch;
        // The buyer's mint naming what it read: it must revert (_recordMint counts one that does not).
        uint8 tier = tierSeed % 3;
        if (inUsdc) {
            Executed memory auth = _authorization(FIRST_BUYER_KEY + buyerSeed % 4, tier);
            _fund(auth.from, auth.value);
            _mintUsdc(auth, 0, seen, auth.from, buyerSeed % 2 == 0);
        } else {
            _mintEth(buyers[buyerSeed % 4], tier, 0, 0, seen);
        }
        _mintEth(buyers[buyerSeed % 4], tier, 0, 0, ghostEpoch);
    }

    /*//////////////////////////////////////////////////////////////
                                   IMAGES
    //////////////////////////////////////////////////////////////*/

    function _recordImage(uint256 id, bytes32 digest, address settler) internal {
        if (block.timestamp >= ghostDeadline[id] || ghostDigest[id] != 0) ++violations;
        uint256 servesFrom = ghostServesFrom[settler];
        if (servesFrom == 0 || id < servesFrom) ++consentViolations;
        uint256 asset = ghostAsset[id];
        uint256 escrow = ghostEscrow[id];
        uint256 fee = escrow * nft.feeBps() / 10_000;
        ghostDigest[id] = digest;
        _ghostFulfilled[asset] += escrow;
        _ghostFees[asset] += fee;
        _ghostEarned[settler][asset] += escrow - fee;
        ++images;
    }

    /// @dev Any account tries one token.
    function setImage(uint256 idSeed, bytes32 digest, uint256 settlerSeed) external counted {
        _trySetImage(_pickId(idSeed), digest == 0 ? bytes32(uint256(1)) : digest, accounts[settlerSeed % 8]);
    }

    function _trySetImage(uint256 id, bytes32 digest, address settler) internal {
        vm.prank(settler);
        try nft.setImage(id, digest) {
            _recordImage(id, digest, settler);
        } catch {
            ++refusedSettlements;
        }
    }

    /// @dev Every account, the owner and the newcomer first, tries to settle every pending token.
    function settleEveryPending(bytes32 digest) external counted {
        if (digest == 0) digest = bytes32(uint256(1));
        uint256 count = ids.length;
        for (uint256 a; a < 8; ++a) {
            address settler = accounts[(a + 3) % 8]; // newcomer, buyers, owner, then the oracles
            for (uint256 i = count > 12 ? count - 12 : 0; i < count; ++i) {
                uint256 id = ids[i];
                if (ghostDigest[id] == 0 && !ghostRefundedToken[id]) _trySetImage(id, digest, settler);
            }
        }
    }

    function setImages(uint256 idSeed, uint8 countSeed, bytes32 digest, uint256 settlerSeed) external counted {
        uint256 count = 1 + countSeed % 4;
        uint256[] memory batch = new uint256[](count);
        bytes32[] memory digests = new bytes32[](count);
        for (uint256 i; i < count; ++i) {
            batch[i] = _pickId(idSeed / 2 + i);
            digests[i] = keccak256(abi.encode(digest, i));
        }
        address settler = accounts[settlerSeed % 8];
        vm.prank(settler);
        try nft.setImages(batch, digests) {
            for (uint256 i; i < count; ++i) {
                _recordImage(batch[i], digests[i], settler);
            }
        } catch {
            ++refusedSettlements;
        }
    }

    /// @dev The owner authorises or revokes anyone who may settle, itself included.
    function authorise(uint256 whoSeed, bool authorised) external counted {
        address who = accounts[whoSeed % 4];
        vm.prank(owner);
        nft.setOracle(who, authorised);
        if (!authorised) {
            ghostServesFrom[who] = 0;
        } else if (ghostServesFrom[who] == 0) {
            ghostServesFrom[who] = nft.nextTokenId();
            ++ghostEpoch;
        }
    }

    /*//////////////////////////////////////////////////////////////
                              REFUNDS, CREDIT
    //////////////////////////////////////////////////////////////*/

    /// @dev What `holder` holds of `asset`: its balance and its credit.
    function _holdings(address holder, uint256 asset) internal view returns (uint256 balance, uint256 credit) {
        if (asset == ETH) return (holder.balance, nft.credit(holder));
        return (usdc.balanceOf(holder), nft.usdcCredit(holder));
    }

    /// @dev The first token from `seed` on that is still pending (or `seed`'s own if none is), so that refunds
    /// are tried on tokens that can be due, not mostly on settled ones.
    function _pickPending(uint256 seed) internal view returns (uint256) {
        uint256 count = ids.length;
        for (uint256 i; i < count; ++i) {
            uint256 id = ids[(seed + i) % count];
            if (ghostDigest[id] == 0 && !ghostRefundedToken[id]) return id;
        }
        return _pickId(seed);
    }

    /// @dev Anyone refunds a token (mostly a pending one, half the time at its deadline); one at or past its
    /// deadline must refund, to its holder, in its asset.
    function refund(uint256 idSeed, uint256 callerSeed) external counted {
        uint256 id = idSeed % 4 == 0 ? _pickId(idSeed) : _pickPending(idSeed);
        address holder;
        try nft.ownerOf(id) returns (address h) {
            holder = h;
        } catch {
            return;
        }
        // Half the time the keeper comes back exactly at the deadline.
        if (callerSeed % 2 == 0 && block.timestamp < ghostDeadline[id]) vm.warp(ghostDeadline[id]);
        bool due = block.timestamp >= ghostDeadline[id] && ghostDigest[id] == 0 && !ghostRefundedToken[id];
        uint256 asset = ghostAsset[id];
        (uint256 balanceBefore, uint256 creditBefore) = _holdings(holder, asset);
        uint256 liabilitiesBefore = nft.usdcLiabilities();
        vm.prank(accounts[callerSeed % 8]);
        try nft.refund(id) {
            if (!due) ++violations;
            uint256 escrow = ghostEscrow[id];
            (uint256 balanceAfter, uint256 creditAfter) = _holdings(holder, asset);
            bool paid = balanceAfter == balanceBefore + escrow;
            bool credited = creditAfter == creditBefore + escrow;
            if (asset == USDC && holder == address(nft)) {
                // The contract pays itself: the USDC stays, off the books, unbooked.
                paid = nft.usdcLiabilities() == liabilitiesBefore - escrow && balanceAfter == balanceBefore;
                if (paid) ghostUsdcArrivedOutside += escrow;
            }
            if (paid == credited) ++violations;
            if (paid) _ghostRefundsPaid[asset] += escrow;
            _ghostRefunded[asset] += escrow;
            ghostRefundedToken[id] = true;
            ++refunds;
            if (asset == USDC) ++usdcRefunds;
        } catch {
            if (due) ++refundFailures;
        }
    }

    /// @dev Holders give tokens to each other, to a contract that refuses ether, or to the NFT contract.
    function transfer(uint256 idSeed, uint256 toSeed) external counted {
        uint256 id = _pickId(idSeed);
        uint256 pick = toSeed % 6;
        address to = pick < 4 ? buyers[pick] : pick == 4 ? address(refuser) : address(nft);
        try nft.ownerOf(id) returns (address holder) {
            if (holder.code.length != 0) return; // the refuser and the contract cannot act
            vm.prank(holder);
            nft.transferFrom(holder, to, id);
        } catch {}
    }

    /// @dev An account withdraws its credit in both assets, to itself or (withdrawTo) to a buyer; the refuser
    /// always names a recipient. Exactly the credits arrive.
    function withdraw(uint256 who, uint256 toSeed) external counted {
        address account = who % 9 == 8 ? address(refuser) : accounts[who % 8];
        bool to = toSeed % 2 == 0 || account == address(refuser);
        address recipient = to ? buyers[toSeed % 4] : account;
        uint256 owedEth = nft.credit(account);
        uint256 owedUsdc = nft.usdcCredit(account);
        uint256 ethBefore = recipient.balance;
        uint256 usdcBefore = usdc.balanceOf(recipient);
        vm.prank(account);
        bool ok = to ? _tryWithdrawTo(recipient) : _tryWithdraw();
        if (!ok) return;
        if (recipient.balance != ethBefore + owedEth) ++violations;
        if (usdc.balanceOf(recipient) != usdcBefore + owedUsdc) ++violations;
        _ghostWithdrawn[ETH] += owedEth;
        _ghostWithdrawn[USDC] += owedUsdc;
        if (account == owner) {
            _ghostOwnerWithdrawn[ETH] += owedEth;
            _ghostOwnerWithdrawn[USDC] += owedUsdc;
        }
    }

    // The prank set by the caller applies to the contract call here.
    function _tryWithdraw() internal returns (bool ok) {
        try nft.withdraw() {
            ok = true;
        } catch {}
    }

    function _tryWithdrawTo(address recipient) internal returns (bool ok) {
        try nft.withdrawTo(payable(recipient)) {
            ok = true;
        } catch {}
    }

    /// @dev USDC blacklists a buyer, or lifts it: its USDC refunds become credit, which it takes with withdrawTo.
    function blacklist(uint256 buyerSeed, bool listed) external counted {
        vm.prank(usdcOwner);
        if (listed) usdc.blacklist(buyers[buyerSeed % 4]);
        else usdc.unBlacklist(buyers[buyerSeed % 4]);
    }

    /*//////////////////////////////////////////////////////////////
                         TIME, FEEDS AND SETTINGS
    //////////////////////////////////////////////////////////////*/

    function warp(uint32 secondsAhead) external counted {
        vm.warp(block.timestamp + secondsAhead % 2 hours);
    }

    /// @dev A new ETH/USD answer, now: $1,000 to $5,000 per ether.
    function movePrice(uint256 dollars) external counted {
        Feeds.setPrice(ethUsd, int256(1000 + dollars % 4001) * Feeds.USD);
    }

    /// @dev The feed's answer dates from up to two hours ago (stale past maxPriceAge).
    function makeStale(uint32 age) external counted {
        Feeds.makeStale(ethUsd, age % 2 hours);
    }

    /// @dev The sequencer goes down, or comes back (now and then within the grace period).
    function sequencerStatus(bool down, uint32 since) external counted {
        if (down) Feeds.sequencerDown(sequencer);
        else Feeds.sequencerUp(sequencer, since % (2 * Feeds.GRACE_PERIOD));
    }

    function configure(uint8 what, uint64 value) external counted {
        vm.startPrank(owner);
        if (what % 4 == 0) nft.setPrice(uint8(value % 3), value % (5 * 1e6));
        else if (what % 4 == 1) nft.setFee(uint16(value % 2001));
        else if (what % 4 == 2) nft.setTimeout(uint32(5 minutes + value % 3 hours));
        else nft.setMaxPriceAge(uint32(1 minutes + value % 1 days));
        vm.stopPrank();
    }
}

/// @dev The invariants of the contract's NatSpec header, by name, each checked per asset where it concerns
/// money, after every call of the handler's random sequences (64 runs of 64 calls, foundry.toml).
contract GenImNFTInvariantTest is GenImNFTSetup {
    uint256 internal constant ETH = 0;
    uint256 internal constant USDC = 1;
    Handler internal handler;
    address internal owner = vm.addr(1);
    address[2] internal oracles = [vm.addr(2), vm.addr(3)];

    function setUp() public {
        address[] memory initial = new address[](2);
        (initial[0], initial[1]) = (oracles[0], oracles[1]);
        _deploy(owner, initial);
        handler = new Handler(nft, usdc, usdcOwner, oracles);
        targetContract(address(handler));
        bytes4[] memory selectors = new bytes4[](22);
        selectors[0] = Handler.mintEth.selector;
        selectors[1] = Handler.mintUsdc.selector;
        selectors[2] = Handler.frontRun.selector;
        selectors[3] = Handler.mintExecuted.selector;
        selectors[4] = Handler.cancelThenMint.selector;
        selectors[5] = Handler.authoriseThenMint.selector;
        selectors[6] = Handler.setImage.selector;
        selectors[7] = Handler.settleEveryPending.selector;
        selectors[8] = Handler.setImages.selector;
        selectors[9] = Handler.authorise.selector;
        selectors[10] = Handler.refund.selector;
        selectors[11] = Handler.transfer.selector;
        selectors[12] = Handler.withdraw.selector;
        selectors[13] = Handler.blacklist.selector;
        selectors[14] = Handler.warp.selector;
        selectors[15] = Handler.movePrice.selector;
        selectors[16] = Handler.makeStale.selector;
        selectors[17] = Handler.sequencerStatus.selector;
        selectors[18] = Handler.configure.selector;
        // Mints twice as often as the rest.
        selectors[19] = Handler.mintEth.selector;
        selectors[20] = Handler.mintUsdc.selector;
        selectors[21] = Handler.movePrice.selector;
        targetSelector(FuzzSelector(address(handler), selectors));
    }

    /// @dev Pending escrow of `asset` over every token minted.
    function _pendingEscrow(uint256 asset) internal view returns (uint256 pending) {
        uint256 count = handler.idCount();
        for (uint256 i; i < count; ++i) {
            GenImNFT.Request memory r = nft.request(handler.ids(i));
            if (r.status == GenImNFT.Status.Pending && uint256(r.asset) == asset) pending += r.escrow;
        }
    }

    /// @dev Credits of `asset` of everyone who can hold any (the owner's include the fees).
    function _credits(uint256 asset) internal view returns (uint256 sum) {
        address[10] memory holders;
        for (uint256 i; i < 8; ++i) {
            holders[i] = handler.accounts(i);
        }
        (holders[8], holders[9]) = (address(handler.refuser()), address(nft));
        for (uint256 i; i < holders.length; ++i) {
            sum += asset == ETH ? nft.credit(holders[i]) : nft.usdcCredit(holders[i]);
        }
    }

    function _balance(uint256 asset) internal view returns (uint256) {
        return asset == ETH ? address(nft).balance : usdc.balanceOf(address(nft));
    }

    /// Per asset, the contract holds what its books owe: ETH balance == pending ETH escrow + ETH credits + ETH
    /// fees; USDC balance >= usdcLiabilities() == pending USDC escrow + USDC credits + USDC fees, the excess
    /// being exactly the USDC that arrived outside a mint and no mint has drawn on yet.
    function invariant_EscrowIsSolvent() public view {
        uint256 ethBooks = _pendingEscrow(ETH) + _credits(ETH);
        vm.assertGe(address(nft).balance, ethBooks, "ETH: balance covers escrow, credits and fees");
        vm.assertEq(address(nft).balance, ethBooks, "ETH: balance is exactly the books");
        uint256 liabilities = nft.usdcLiabilities();
        vm.assertEq(liabilities, _pendingEscrow(USDC) + _credits(USDC), "USDC: liabilities are the books");
        vm.assertGe(usdc.balanceOf(address(nft)), liabilities, "USDC: balance covers the liabilities");
        vm.assertEq(
            usdc.balanceOf(address(nft)) - liabilities,
            handler.ghostUsdcArrivedOutside() - handler.ghostUsdcDrawnByMints(),
            "USDC: the excess is what arrived outside a mint, less what mints drew on"
        );
    }

    /// Every token was minted in the transaction that brought its payment: the ETH it charged, or exactly its
    /// price in USDC from its buyer, or (an authorization executed first) USDC that had arrived and that no
    /// books held, once per authorization.
    function invariant_NoTokenWithoutPayment() public view {
        vm.assertEq(handler.paymentViolations(), 0, "a mint without its payment");
        vm.assertEq(nft.nextTokenId() - 1, handler.idCount(), "every token is one the handler saw paid");
        vm.assertLe(
            handler.ghostUsdcDrawnByMints(), handler.ghostUsdcArrivedOutside(), "mints drew only on USDC that arrived"
        );
        vm.assertEq(handler.ghostMinted(ETH), handler.ghostPaidInMint(ETH), "ETH escrow == ETH that came with mints");
        vm.assertEq(
            handler.ghostMinted(USDC),
            handler.ghostPaidInMint(USDC) + handler.ghostUsdcDrawnByMints(),
            "USDC escrow == USDC pulled by mints + USDC drawn from what arrived outside"
        );
    }

    function invariant_OneImagePerToken() public view {
        uint256 count = handler.idCount();
        for (uint256 i; i < count; ++i) {
            uint256 id = handler.ids(i);
            vm.assertEq(nft.request(id).metadataDigest, handler.ghostDigest(id), "digest written once, never changed");
        }
        vm.assertEq(handler.violations(), 0, "no handler check failed");
    }

    /// Per asset: every escrow is pending, fulfilled or refunded, exactly once; the balance is what came in,
    /// less refunds paid and withdrawals (plus, for USDC, what arrived outside a mint and was not drawn on).
    function invariant_EscrowPaidOutOnce() public view {
        for (uint256 asset; asset < 2; ++asset) {
            vm.assertEq(
                handler.ghostMinted(asset),
                _pendingEscrow(asset) + handler.ghostFulfilled(asset) + handler.ghostRefunded(asset),
                "every escrow is pending, fulfilled or refunded, once"
            );
            uint256 outside = asset == ETH ? 0 : handler.ghostUsdcArrivedOutside() - handler.ghostUsdcDrawnByMints();
            vm.assertEq(
                _balance(asset),
                handler.ghostMinted(asset) - handler.ghostRefundsPaid(asset) - handler.ghostWithdrawn(asset) + outside,
                "balance is exactly the books"
            );
        }
    }

    /// The owner's credit, per asset, is the protocol fees plus what it earned as an oracle on tokens minted
    /// after it authorised itself; it never includes a pending escrow or one settled without the buyer's
    /// consent.
    function invariant_OwnerCannotTakeEscrow() public view {
        vm.assertEq(
            nft.credit(owner),
            handler.ghostFees(ETH) + handler.ghostEarned(owner, ETH) - handler.ghostOwnerWithdrawn(ETH),
            "owner's ETH: fees and its own consented earnings only"
        );
        vm.assertEq(
            nft.usdcCredit(owner),
            handler.ghostFees(USDC) + handler.ghostEarned(owner, USDC) - handler.ghostOwnerWithdrawn(USDC),
            "owner's USDC: fees and its own consented earnings only"
        );
        vm.assertEq(handler.consentViolations(), 0, "no token settled without consent");
    }

    /// Every mint named the oracle epoch of its block (a mint naming the epoch before an authorisation in the
    /// same block reverted), and every image was set by an account authorised when its token was minted and
    /// ever since; the contract's epoch and each account's first token match the handler's own record.
    function invariant_ConsentAtMint() public view {
        vm.assertEq(handler.consentViolations(), 0, "a token minted or settled outside its buyer's consent");
        vm.assertEq(nft.oracleEpoch(), handler.ghostEpoch(), "epoch: one per authorisation that grew the set");
        for (uint256 i; i < 8; ++i) {
            address account = handler.accounts(i);
            vm.assertEq(nft.servesFrom(account), handler.ghostServesFrom(account), "consent record");
            vm.assertTrue(nft.isOracle(account) == (handler.ghostServesFrom(account) != 0), "authorisation");
        }
    }

    function invariant_RefundsAlwaysLand() public view {
        vm.assertEq(handler.refundFailures(), 0, "a refund that was due reverted");
    }

    function invariant_RequestTermsFixedAtMint() public view {
        uint256 count = handler.idCount();
        for (uint256 i; i < count; ++i) {
            uint256 id = handler.ids(i);
            GenImNFT.Request memory r = nft.request(id);
            vm.assertEq(r.escrow, handler.ghostEscrow(id), "escrow");
            vm.assertEq(r.deadline, handler.ghostDeadline(id), "deadline");
            vm.assertEq(r.tier, handler.ghostTier(id), "tier");
            vm.assertEq(r.aspect, handler.ghostAspect(id), "aspect");
            vm.assertEq(uint256(r.asset), handler.ghostAsset(id), "asset");
        }
    }

    function invariant_FulfilledOnlyBeforeDeadline() public view {
        // The handler checks each successful setImage and refund against the ghost deadline and digest.
        vm.assertEq(handler.violations(), 0, "images before deadline only, refunds after and only if unset");
    }

    /// The run did what it claims: once a run is long, images were set, and unconsented settlements and
    /// stale-epoch mints were tried and refused (a handler that never reached these paths would make the
    /// invariants above vacuous).
    function invariant_RunCoversTheAttack() public view {
        if (handler.calls() < 60) return;
        vm.assertGt(handler.refusedSettlements() + handler.staleEpochRefused(), 0, "attacks were tried and refused");
    }
}
