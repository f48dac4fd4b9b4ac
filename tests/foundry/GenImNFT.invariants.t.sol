// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {GenImNFT} from "../../contracts/GenImNFT.sol";
import {Test, Vm} from "./utils/Test.sol";

/// @dev A holder that refuses ether: refunds of its tokens must land as its credit.
contract Refuser {
    receive() external payable {
        revert("no ether");
    }
}

/// @dev Drives the contract through random sequences of mints, images, refunds, transfers, withdrawals,
/// settings changes, oracle authorisations and revocations (the owner's own included) and time, keeping
/// ghost books of what must hold. Every account tries to settle every pending token. A check that fails
/// inside a handler (an image set by an oracle the buyer never consented to, after its deadline, twice; a
/// refund past the deadline that reverts...) is counted in `violations`, which the invariants assert to be
/// zero, because the invariant runner does not fail on a handler's reverts.
contract Handler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    GenImNFT public immutable nft;
    address public immutable owner;
    Refuser public immutable refuser;
    address[4] public buyers;
    // Everyone who may try to settle: the owner, the two initial oracles, a newcomer the owner may
    // authorise at any time, and the buyers.
    address[8] public accounts;

    uint256[] public ids;
    mapping(uint256 tokenId => uint256) public ghostEscrow;
    mapping(uint256 tokenId => uint256) public ghostDeadline;
    mapping(uint256 tokenId => uint8) public ghostTier;
    mapping(uint256 tokenId => uint8) public ghostAspect;
    mapping(uint256 tokenId => bytes32) public ghostDigest;
    mapping(uint256 tokenId => bool) public ghostRefundedToken;
    // The first token id each account may settle, as the handler's own record of authorisations: 0 while
    // not authorised.
    mapping(address account => uint256) public ghostServesFrom;
    mapping(address account => uint256) public ghostEarned;

    uint256 public ghostMinted;
    uint256 public ghostFulfilled;
    uint256 public ghostRefunded; // every escrow refunded, paid or credited
    uint256 public ghostRefundsPaid; // the part that left the contract as ether
    uint256 public ghostWithdrawn;
    uint256 public ghostFees;
    uint256 public ghostOwnerWithdrawn;
    uint256 public violations;
    uint256 public consentViolations;
    uint256 public refundFailures;
    uint256 public images;
    uint256 public refunds;
    uint256 public refusedSettlements;

    constructor(GenImNFT nft_, address owner_, address[2] memory oracles_) {
        nft = nft_;
        owner = owner_;
        refuser = new Refuser();
        for (uint256 i; i < 4; ++i) {
            buyers[i] = vm.addr(100 + i);
            vm.deal(buyers[i], 1_000 ether);
        }
        accounts = [owner_, oracles_[0], oracles_[1], vm.addr(4), buyers[0], buyers[1], buyers[2], buyers[3]];
        ghostServesFrom[oracles_[0]] = 1;
        ghostServesFrom[oracles_[1]] = 1;
    }

    function idCount() external view returns (uint256) {
        return ids.length;
    }

    function _pickId(uint256 seed) internal view returns (uint256) {
        return ids.length == 0 ? 1 : ids[seed % ids.length];
    }

    function mint(uint256 buyerSeed, uint8 tierSeed, uint96 excess, uint16 promptLength) external {
        uint8 tier = tierSeed % 3;
        uint8 aspect = uint8(buyerSeed >> 8) % 4;
        uint256 price = nft.price(tier);
        if (price == 0) return;
        address buyer = buyers[buyerSeed % 4];
        string memory prompt = string(new bytes(1 + promptLength % 1000));
        uint256 before = buyer.balance;
        vm.prank(buyer);
        uint256 id = nft.mint{value: price + excess % 1 ether}(prompt, tier, aspect);
        if (buyer.balance != before - price) ++violations; // excess not returned
        ids.push(id);
        ghostEscrow[id] = price;
        ghostDeadline[id] = block.timestamp + nft.timeout();
        ghostTier[id] = tier;
        ghostAspect[id] = aspect;
        ghostMinted += price;
    }

    function _recordImage(uint256 id, bytes32 digest, address settler) internal {
        if (block.timestamp >= ghostDeadline[id] || ghostDigest[id] != 0) ++violations;
        uint256 servesFrom = ghostServesFrom[settler];
        if (servesFrom == 0 || id < servesFrom) ++consentViolations;
        uint256 fee = ghostEscrow[id] * nft.feeBps() / 10_000;
        ghostDigest[id] = digest;
        ghostFulfilled += ghostEscrow[id];
        ghostFees += fee;
        ghostEarned[settler] += ghostEscrow[id] - fee;
        ++images;
    }

    /// @dev Any account tries one token.
    function setImage(uint256 idSeed, bytes32 digest, uint256 settlerSeed) external {
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
    function settleEveryPending(bytes32 digest) external {
        if (digest == 0) digest = bytes32(uint256(1));
        uint256 count = ids.length;
        for (uint256 a; a < 8; ++a) {
            address settler = accounts[(a + 3) % 8]; // newcomer, buyers, owner, then the oracles
            for (uint256 i = count > 16 ? count - 16 : 0; i < count; ++i) {
                uint256 id = ids[i];
                if (ghostDigest[id] == 0 && !ghostRefundedToken[id]) _trySetImage(id, digest, settler);
            }
        }
    }

    function setImages(uint256 idSeed, uint8 countSeed, bytes32 digest, uint256 settlerSeed) external {
        uint256 count = 1 + countSeed % 4;
        uint256[] memory batch = new uint256[](count);
        bytes32[] memory digests = new bytes32[](count);
        for (uint256 i; i < count; ++i) {
            batch[i] = _pickId(idSeed + i);
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
    function authorise(uint256 whoSeed, bool authorised) external {
        address who = accounts[whoSeed % 4];
        vm.prank(owner);
        nft.setOracle(who, authorised);
        if (!authorised) ghostServesFrom[who] = 0;
        else if (ghostServesFrom[who] == 0) ghostServesFrom[who] = nft.nextTokenId();
    }

    /// @dev Anyone refunds any token; a pending one past its deadline must refund, to its holder.
    function refund(uint256 idSeed, uint256 callerSeed) external {
        uint256 id = _pickId(idSeed);
        address holder;
        try nft.ownerOf(id) returns (address h) {
            holder = h;
        } catch {
            return;
        }
        bool due = block.timestamp >= ghostDeadline[id] && ghostDigest[id] == 0 && !ghostRefundedToken[id];
        uint256 balanceBefore = holder.balance;
        uint256 creditBefore = nft.credit(holder);
        vm.prank(accounts[callerSeed % 8]);
        try nft.refund(id) {
            if (!due) ++violations;
            bool paid = holder.balance == balanceBefore + ghostEscrow[id];
            bool credited = nft.credit(holder) == creditBefore + ghostEscrow[id];
            if (paid == credited) ++violations;
            if (paid) ghostRefundsPaid += ghostEscrow[id];
            ghostRefunded += ghostEscrow[id];
            ghostRefundedToken[id] = true;
            ++refunds;
        } catch {
            if (due) ++refundFailures;
        }
    }

    /// @dev Holders give tokens to each other, to a contract that refuses ether, or to the NFT contract.
    function transfer(uint256 idSeed, uint256 toSeed) external {
        uint256 id = _pickId(idSeed);
        uint256 pick = toSeed % 6;
        address to = pick < 4 ? buyers[pick] : pick == 4 ? address(refuser) : address(nft);
        try nft.ownerOf(id) returns (address holder) {
            if (holder.code.length != 0) return; // the refuser and the contract cannot act
            vm.prank(holder);
            nft.transferFrom(holder, to, id);
        } catch {}
    }

    function withdraw(uint256 who) external {
        address account = who % 9 == 8 ? address(refuser) : accounts[who % 8];
        uint256 owed = nft.credit(account);
        uint256 before = account.balance;
        vm.prank(account);
        try nft.withdraw() {
            if (account.balance != before + owed) ++violations;
            ghostWithdrawn += owed;
            if (account == owner) ghostOwnerWithdrawn += owed;
        } catch {}
    }

    function warp(uint32 secondsAhead) external {
        vm.warp(block.timestamp + secondsAhead % 2 hours);
    }

    function configure(uint8 what, uint64 value) external {
        vm.startPrank(owner);
        if (what % 3 == 0) nft.setPrice(uint8(value % 3), (value % 1e6) * 1 gwei);
        else if (what % 3 == 1) nft.setFee(uint16(value % 2001));
        else nft.setTimeout(uint32(5 minutes + value % 3 hours));
        vm.stopPrank();
    }
}

contract GenImNFTInvariantTest is Test {
    GenImNFT internal nft;
    Handler internal handler;
    address internal owner = vm.addr(1);
    address[2] internal oracles = [vm.addr(2), vm.addr(3)];

    function setUp() public {
        address[] memory initial = new address[](2);
        (initial[0], initial[1]) = (oracles[0], oracles[1]);
        nft = new GenImNFT(owner, [uint256(0.001 ether), 0.004 ether, 0.016 ether], 500, initial);
        handler = new Handler(nft, owner, oracles);
        targetContract(address(handler));
    }

    function _pendingEscrow() internal view returns (uint256 pending) {
        uint256 count = handler.idCount();
        for (uint256 i; i < count; ++i) {
            GenImNFT.Request memory r = nft.request(handler.ids(i));
            if (r.status == GenImNFT.Status.Pending) pending += r.escrow;
        }
    }

    function _credits() internal view returns (uint256 sum) {
        for (uint256 i; i < 8; ++i) {
            sum += nft.credit(handler.accounts(i));
        }
        sum += nft.credit(address(handler.refuser())) + nft.credit(address(nft));
    }

    function invariant_EscrowIsSolvent() public view {
        vm.assertGe(address(nft).balance, _pendingEscrow() + _credits(), "balance covers escrow and credits");
    }

    function invariant_EscrowPaidOutOnce() public view {
        vm.assertEq(
            handler.ghostMinted(),
            _pendingEscrow() + handler.ghostFulfilled() + handler.ghostRefunded(),
            "every escrow is pending, fulfilled or refunded, once"
        );
        vm.assertEq(
            address(nft).balance,
            handler.ghostMinted() - handler.ghostRefundsPaid() - handler.ghostWithdrawn(),
            "balance is exactly the books"
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

    /// The owner's credit is the protocol fees plus what it earned as an oracle on tokens minted after it
    /// authorised itself; it never includes a pending escrow or one settled without the buyer's consent.
    function invariant_OwnerCannotTakeEscrow() public view {
        vm.assertEq(
            nft.credit(owner),
            handler.ghostFees() + handler.ghostEarned(owner) - handler.ghostOwnerWithdrawn(),
            "owner: fees and its own consented earnings only"
        );
        vm.assertEq(handler.consentViolations(), 0, "no token settled without consent");
    }

    /// Every image was set by an account authorised when its token was minted and ever since; the contract's
    /// record of each account's first token matches the handler's own record of the owner's calls.
    function invariant_ConsentAtMint() public view {
        vm.assertEq(handler.consentViolations(), 0, "a token was settled by an oracle it never consented to");
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
        }
    }

    function invariant_FulfilledOnlyBeforeDeadline() public view {
        // The handler checks each successful setImage and refund against the ghost deadline and digest.
        vm.assertEq(handler.violations(), 0, "images before deadline only, refunds after and only if unset");
    }

    /// The run did what it claims: images were set, refunds happened, and unconsented settlements were tried
    /// and refused (a handler that never reached these paths would make the invariants above vacuous).
    function invariant_RunCoversTheAttack() public view {
        if (handler.idCount() < 8) return;
        vm.assertGt(handler.refusedSettlements(), 0, "settlements were attempted and refused");
    }
}
