// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {GenImNFT} from "../../contracts/GenImNFT.sol";
import {Test, Vm} from "./utils/Test.sol";

/// @dev Drives the contract through random sequences of mints, images, refunds, transfers, withdrawals,
/// settings changes and time, keeping ghost books of what must hold. A check that fails inside a handler
/// (an image set after its deadline, a second image...) is counted in `violations`, which the invariants
/// assert to be zero, because the invariant runner does not fail on a handler's reverts.
contract Handler {
    Vm internal constant vm = Vm(address(uint160(uint256(keccak256("hevm cheat code")))));

    GenImNFT public immutable nft;
    address public immutable owner;
    address[4] public actors;
    address[2] public oracles;

    uint256[] public ids;
    mapping(uint256 tokenId => uint256) public ghostEscrow;
    mapping(uint256 tokenId => uint256) public ghostDeadline;
    mapping(uint256 tokenId => uint8) public ghostTier;
    mapping(uint256 tokenId => bytes32) public ghostDigest;

    uint256 public ghostMinted;
    uint256 public ghostFulfilled;
    uint256 public ghostRefunded;
    uint256 public ghostWithdrawn;
    uint256 public ghostFees;
    uint256 public ghostOwnerWithdrawn;
    uint256 public violations;
    uint256 public images;
    uint256 public refunds;

    constructor(GenImNFT nft_, address owner_, address[2] memory oracles_) {
        nft = nft_;
        owner = owner_;
        oracles = oracles_;
        for (uint256 i; i < 4; ++i) {
            actors[i] = vm.addr(100 + i);
            vm.deal(actors[i], 1_000 ether);
        }
    }

    function idCount() external view returns (uint256) {
        return ids.length;
    }

    function _pickId(uint256 seed) internal view returns (uint256) {
        return ids.length == 0 ? 1 : ids[seed % ids.length];
    }

    function mint(uint256 actorSeed, uint8 tierSeed, uint96 excess, uint16 promptLength) external {
        uint8 tier = tierSeed % 3;
        uint256 price = nft.price(tier);
        if (price == 0) return;
        address actor = actors[actorSeed % 4];
        string memory prompt = string(new bytes(1 + promptLength % 1000));
        uint256 before = actor.balance;
        vm.prank(actor);
        uint256 id = nft.mint{value: price + excess % 1 ether}(prompt, tier);
        if (actor.balance != before - price) ++violations; // excess not returned
        ids.push(id);
        ghostEscrow[id] = price;
        ghostDeadline[id] = block.timestamp + nft.timeout();
        ghostTier[id] = tier;
        ghostMinted += price;
    }

    function _recordImage(uint256 id, bytes32 digest, address oracle) internal {
        if (block.timestamp >= ghostDeadline[id] || ghostDigest[id] != 0 || !nft.isOracle(oracle)) ++violations;
        ghostDigest[id] = digest;
        ghostFulfilled += ghostEscrow[id];
        ghostFees += ghostEscrow[id] * nft.feeBps() / 10_000;
        ++images;
    }

    function setImage(uint256 idSeed, bytes32 digest, uint256 oracleSeed) external {
        uint256 id = _pickId(idSeed);
        if (digest == 0) digest = bytes32(uint256(1));
        address oracle = oracles[oracleSeed % 2];
        vm.prank(oracle);
        try nft.setImage(id, digest) {
            _recordImage(id, digest, oracle);
        } catch {}
    }

    function setImages(uint256 idSeed, uint8 countSeed, bytes32 digest) external {
        uint256 count = 1 + countSeed % 4;
        uint256[] memory batch = new uint256[](count);
        bytes32[] memory digests = new bytes32[](count);
        for (uint256 i; i < count; ++i) {
            batch[i] = _pickId(idSeed + i);
            digests[i] = keccak256(abi.encode(digest, i));
        }
        vm.prank(oracles[0]);
        try nft.setImages(batch, digests) {
            for (uint256 i; i < count; ++i) {
                _recordImage(batch[i], digests[i], oracles[0]);
            }
        } catch {}
    }

    function refund(uint256 idSeed) external {
        uint256 id = _pickId(idSeed);
        address holder;
        try nft.ownerOf(id) returns (address h) {
            holder = h;
        } catch {
            return;
        }
        uint256 before = holder.balance;
        vm.prank(holder);
        try nft.refund(id) {
            if (block.timestamp < ghostDeadline[id] || ghostDigest[id] != 0) ++violations;
            if (holder.balance != before + ghostEscrow[id]) ++violations;
            ghostRefunded += ghostEscrow[id];
            ++refunds;
        } catch {}
    }

    function transfer(uint256 idSeed, uint256 toSeed) external {
        uint256 id = _pickId(idSeed);
        try nft.ownerOf(id) returns (address holder) {
            vm.prank(holder);
            nft.transferFrom(holder, actors[toSeed % 4], id);
        } catch {}
    }

    function withdraw(uint256 who) external {
        address account = who % 3 == 0 ? owner : oracles[who % 2];
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
        if (what % 4 == 0) nft.setPrice(uint8(value % 3), (value % 1e6) * 1 gwei);
        else if (what % 4 == 1) nft.setFee(uint16(value % 2001));
        else if (what % 4 == 2) nft.setTimeout(uint32(5 minutes + value % 3 hours));
        else nft.setOracle(oracles[1], value % 2 == 0);
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

    function _credits() internal view returns (uint256) {
        return nft.credit(owner) + nft.credit(oracles[0]) + nft.credit(oracles[1]);
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
            handler.ghostMinted() - handler.ghostRefunded() - handler.ghostWithdrawn(),
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

    function invariant_OwnerCannotTakeEscrow() public view {
        vm.assertEq(nft.credit(owner), handler.ghostFees() - handler.ghostOwnerWithdrawn(), "owner: fees only");
    }

    function invariant_RequestTermsFixedAtMint() public view {
        uint256 count = handler.idCount();
        for (uint256 i; i < count; ++i) {
            uint256 id = handler.ids(i);
            GenImNFT.Request memory r = nft.request(id);
            vm.assertEq(r.escrow, handler.ghostEscrow(id), "escrow");
            vm.assertEq(r.deadline, handler.ghostDeadline(id), "deadline");
            vm.assertEq(r.tier, handler.ghostTier(id), "tier");
        }
    }

    function invariant_FulfilledOnlyBeforeDeadline() public view {
        // The handler checks each successful setImage and refund against the ghost deadline and digest.
        vm.assertEq(handler.violations(), 0, "images before deadline only, refunds after and only if unset");
    }
}
