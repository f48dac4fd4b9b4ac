// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

// Hostile input (issue 4): one fuzz test, testFuzz_AnyCallerAnyValue, calls any of the contract's 22 external
// entry points that can be sent a transaction (every state-changing function, plus the view
// renounceOwnership), or sends it plain ether or calldata matching no function, from a random caller (half the time the caller the function expects: owner, oracle,
// holder...; else one of six named accounts, or any address), with random arguments and, where the fuzzer
// says so, random ether (also to non-payable functions, which must refuse it).
// The state it starts from has tokens in every condition: pending, pending past the deadline, fulfilled,
// held by a contract that refuses ether, approved to an operator; oracle credit, protocol fees, and a
// pending owner. After the call it asserts:
// - solvency: the balance covers pending escrow plus all credits (fees included), and equals it exactly
//   (only mint takes ether: GenImNFT refuses it on solady's payable ERC-721 calls);
// - no ether is created or lost: the balances of all involved accounts plus the contract's are conserved,
//   and a reverted call changes no balance;
// - settings (prices, fee, timeout, paused, oracles, owner, pending owner, URIs, royalty) change only when
//   the owner calls (or the pending owner accepts), and then to the value asked for;
// - each token's terms are fixed; its holder, image or status change only through a caller allowed to
//   (holder/approved for transfer; anyone for a refund after the deadline, which pays the holder or, if it
//   refuses ether, credits it; an oracle authorised since before the token's mint, before the deadline, for
//   an image); new tokens go to the caller, at the price and in the aspect asked for, and an unknown aspect
//   is refused; other accounts' credits do not shrink.
// Runs: 512 (foundry.toml [fuzz] runs), seed 0x6765, so the run is deterministic. Each run is one call from
// the state set up in setUp (forge resets the state between runs).

import {ERC721} from "solady/tokens/ERC721.sol";
import {GenImNFT} from "../../contracts/GenImNFT.sol";
import {Test} from "./utils/Test.sol";

/// @dev Holds a token and refuses ether: a refund of its token credits it instead of paying it.
contract Sink {
    function mint(GenImNFT nft, uint8 tier) external payable returns (uint256) {
        return nft.mint{value: msg.value}("sink", tier, 0);
    }
}

contract GenImNFTFuzzTest is Test {
    GenImNFT internal nft;
    Sink internal sink;
    address internal owner = vm.addr(1);
    address internal constant ORACLE = 0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF; // vm.addr(2)
    address internal oracle = ORACLE;
    address internal alice = vm.addr(3);
    address internal bob = vm.addr(4);
    address internal heir = vm.addr(5);
    address internal operator = vm.addr(6);
    address[6] internal actors;

    uint256 internal constant BASIC = 0.001 ether;
    uint256 internal constant PREMIUM = 0.004 ether;
    uint256 internal constant ULTRA = 0.016 ether;
    uint256 internal constant FUNCTIONS = 23;
    string internal constant NEW_PLACEHOLDER = "ipfs://new-placeholder";
    string internal constant NEW_CONTRACT_URI = "ipfs://new-contract";
    uint256 internal sinkToken;

    struct Call {
        uint8 fn;
        uint8 tier;
        uint8 aspect;
        address caller;
        address target;
        uint256 id;
        uint256 value;
        uint256 param;
        bool flag;
        bytes data;
    }

    struct Settings {
        uint256[3] prices;
        uint256 fee;
        uint256 timeout;
        bool paused;
        address owner;
        address pendingOwner;
        bool oracleIsOracle;
        bool callerIsOracle;
        bool targetIsOracle;
        bytes32 contractURI;
        bytes32 placeholderURI; // its storage word
        address royaltyReceiver;
        uint256 royalty;
    }

    struct Token {
        address holder;
        bool callerMay; // the caller is the holder, approved for the token, or an operator of the holder
        GenImNFT.Status status;
        uint8 tier;
        uint8 aspect;
        uint40 deadline;
        uint256 escrow;
        bytes32 digest;
    }

    struct State {
        Settings settings;
        Token[] tokens; // index = token id; index 0 unused
        address[] accounts; // everyone whose ether or credit can move, without repeats
        uint256[] balances;
        uint256[] credits;
        uint256 nftBalance;
        uint256 pending;
        uint256 creditSum;
        uint256 price; // of the tier `mint` asks for, or 0
        bool callerIsOracle;
        uint256 callerServesFrom;
    }

    function setUp() public {
        address[] memory oracles = new address[](1);
        oracles[0] = oracle;
        nft = new GenImNFT(owner, [BASIC, PREMIUM, ULTRA], 500, oracles);
        vm.assertEq(ORACLE, vm.addr(2), "ORACLE constant");
        actors = [owner, oracle, alice, bob, heir, operator];
        for (uint256 i; i < actors.length; ++i) {
            vm.deal(actors[i], 10 ether);
        }
        sink = new Sink();
        vm.deal(address(sink), 1 ether);
        vm.startPrank(alice);
        nft.mint{value: BASIC}("expired, alice", 0, 0); // 1
        nft.mint{value: PREMIUM}("fulfilled, alice", 1, 0); // 2
        vm.stopPrank();
        vm.prank(bob);
        nft.mint{value: ULTRA}("expired, bob", 2, 0); // 3
        sinkToken = sink.mint{value: BASIC}(nft, 0); // 4, expired; its refund credits the sink
        vm.prank(oracle);
        nft.setImage(2, keccak256("two"));
        vm.warp(block.timestamp + 1 hours);
        vm.prank(alice);
        nft.mint{value: BASIC}("pending, alice", 0, 0); // 5
        vm.prank(bob);
        nft.mint{value: PREMIUM}("pending, bob", 1, 0); // 6
        vm.prank(alice);
        nft.mint{value: ULTRA}("pending, alice", 2, 0); // 7
        vm.prank(bob);
        nft.mint{value: BASIC}("pending, bob", 0, 0); // 8
        vm.prank(alice);
        nft.setApprovalForAll(operator, true);
        vm.prank(bob);
        nft.approve(alice, 6);
        vm.startPrank(owner);
        nft.setPlaceholderURI("ipfs://placeholder");
        nft.setDefaultRoyalty(owner, 250);
        nft.transferOwnership(heir);
        vm.stopPrank();
        // A short string lives in its slot: data, then its length times two in the last byte.
        vm.assertEq(_placeholderWord(), bytes32(bytes("ipfs://placeholder")) | bytes32(uint256(18 * 2)), "slot");
    }

    /// @dev The placeholder URI's storage word (slot 6, after Ownable's two and the contract's four): read
    /// there rather than through tokenURI, since any token may be refunded (burned) or set by one call.
    function _placeholderWord() internal view returns (bytes32) {
        return vm.load(address(nft), bytes32(uint256(6)));
    }

    /*//////////////////////////////////////////////////////////////
                               THE FUZZ TEST
    //////////////////////////////////////////////////////////////*/

    function testFuzz_AnyCallerAnyValue(
        uint8 which,
        uint8 who,
        address caller,
        uint256 value,
        uint256 arg,
        bytes32 digest
    ) public {
        Call memory c = _build(which, who, caller, value, arg, digest);
        vm.assume(c.caller != address(nft) && c.caller != address(vm));
        vm.deal(c.caller, c.caller.balance + c.value);

        State memory pre = _state(c);
        vm.assertEq(pre.nftBalance, pre.pending + pre.creditSum, "books exact before the call");

        vm.prank(c.caller);
        (bool ok,) = address(nft).call{value: c.value}(c.data);

        State memory post = _state(c);
        _checkSolvency(c, ok, post);
        _checkEther(c, ok, pre, post);
        _checkSettings(c, ok, pre.settings, post.settings);
        _checkTokens(c, ok, pre, post);
        _checkCredits(c, ok, pre, post);
    }

    /*//////////////////////////////////////////////////////////////
                                 THE CALL
    //////////////////////////////////////////////////////////////*/

    function _payable(uint8 fn) internal pure returns (bool) {
        // Only mint takes ether; GenImNFT refuses it on solady's payable approve/transferFrom/safeTransferFrom.
        return fn == 0;
    }

    function _build(uint8 which, uint8 who, address caller, uint256 value, uint256 arg, bytes32 digest)
        internal
        view
        returns (Call memory c)
    {
        // The fuzzer favours small and edge values: `arg` itself feeds the numeric arguments, where edges
        // matter, and hashes of it make the choices (a shifted `arg` would be 0 most of the time).
        c.fn = uint8(which % FUNCTIONS);
        uint256 pick = _coin(arg, 0) % 8;
        c.target = pick < 6 ? actors[pick] : address(uint160(uint256(digest)));
        c.id = _coin(arg, 1) % (nft.nextTokenId() + 1); // 0 and nextTokenId() do not exist
        c.flag = _coin(arg, 2) % 2 == 1;
        // The caller: half the time the one the function expects (so that calls get past the access checks
        // and exercise the payments), a quarter a named account, a quarter any address the fuzzer picks.
        uint256 mode = uint256(keccak256(abi.encode(who, arg))) % 8;
        if (mode < 4) caller = _expectedCaller(c);
        else if (mode < 6) caller = actors[who % 6];
        c.caller = caller;
        value = bound(value, 0, 2 ether);
        // Ether goes with mint always, with half the calls of the other payable functions, and with an eighth of
        // the calls of non-payable ones (which must refuse it).
        uint256 odds = _payable(c.fn) ? 2 : 8;
        c.value = c.fn == 0 || _coin(arg, 3) % odds == 0 ? value : 0;
        c.data = _calldata(c, arg, digest);
    }

    function _coin(uint256 arg, uint256 k) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(arg, k)));
    }

    /// @dev Who may call `c.fn`: the owner for settings, the pending owner to accept, the oracle to set images
    /// (and to withdraw its credit, or the owner its fees), the token's holder or approved account for refunds
    /// and transfers.
    function _expectedCaller(Call memory c) internal view returns (address) {
        uint8 fn = c.fn;
        if (fn == 0 || fn == 18) return alice;
        if (fn == 1 || fn == 2) return oracle;
        if (fn == 4) return c.flag ? oracle : owner;
        if (fn == 15) return heir;
        if (fn == 3 || fn == 16 || fn == 17 || fn == 19 || fn == 20) {
            // The holder, or half the time whoever it approved (refunds then pay the holder, not the caller).
            address holder = _holder(c.id);
            if (!c.flag || holder == address(0)) return holder;
            address approved = nft.getApproved(c.id);
            if (approved != address(0)) return approved;
            return nft.isApprovedForAll(holder, operator) ? operator : holder;
        }
        return owner;
    }

    function _calldata(Call memory c, uint256 arg, bytes32 digest) internal view returns (bytes memory) {
        uint8 fn = c.fn;
        if (fn == 0) {
            c.tier = uint8(arg % 4); // tier 3 does not exist
            c.aspect = uint8(_coin(arg, 11) % 5); // aspect 4 does not exist
            return abi.encodeCall(GenImNFT.mint, (string(new bytes((arg >> 2) % 1002)), c.tier, c.aspect));
        }
        if (fn == 1) return abi.encodeCall(GenImNFT.setImage, (c.id, digest));
        if (fn == 2) return _setImages(c, arg, digest);
        if (fn == 3) return abi.encodeCall(GenImNFT.refund, (c.id));
        if (fn == 4) return abi.encodeCall(GenImNFT.withdraw, ());
        if (fn == 5) {
            // Three times in four a representable price, else any number.
            c.tier = uint8(_coin(arg, 4) % 4);
            c.param = _coin(arg, 10) % 4 == 0 ? arg : (arg % 1e7) * 1 gwei;
            return abi.encodeCall(GenImNFT.setPrice, (c.tier, c.param));
        }
        if (fn == 6) return abi.encodeCall(GenImNFT.setOracle, (c.target, c.flag));
        if (fn == 7) {
            c.param = uint16(c.flag ? arg : arg % 2001);
            return abi.encodeCall(GenImNFT.setFee, (uint16(c.param)));
        }
        if (fn == 8) {
            c.param = uint32(c.flag ? arg : 5 minutes + arg % (30 days - 5 minutes + 1));
            return abi.encodeCall(GenImNFT.setTimeout, (uint32(c.param)));
        }
        if (fn == 9) return abi.encodeCall(GenImNFT.setPlaceholderURI, (NEW_PLACEHOLDER));
        if (fn == 10) return abi.encodeCall(GenImNFT.setContractURI, (NEW_CONTRACT_URI));
        if (fn == 11) {
            c.param = arg % 12_000; // above 10_000 is refused
            return abi.encodeCall(GenImNFT.setDefaultRoyalty, (c.target, uint96(c.param)));
        }
        if (fn == 12) return abi.encodeCall(GenImNFT.pause, ());
        if (fn == 13) return abi.encodeCall(GenImNFT.unpause, ());
        if (fn == 14) return abi.encodeWithSignature("transferOwnership(address)", c.target);
        if (fn == 15) return abi.encodeWithSignature("acceptOwnership()");
        if (fn == 16) return abi.encodeCall(ERC721.transferFrom, (_from(c, arg), c.target, c.id));
        if (fn == 17) return abi.encodeCall(ERC721.approve, (c.target, c.id));
        if (fn == 18) return abi.encodeCall(ERC721.setApprovalForAll, (c.target, c.flag));
        if (fn == 19) {
            return abi.encodeWithSignature("safeTransferFrom(address,address,uint256)", _from(c, arg), c.target, c.id);
        }
        if (fn == 20) {
            return abi.encodeWithSignature(
                "safeTransferFrom(address,address,uint256,bytes)", _from(c, arg), c.target, c.id, ""
            );
        }
        if (fn == 21) return abi.encodeWithSignature("renounceOwnership()");
        // No receive() and no fallback: plain ether, or a call to no function, is refused.
        return c.flag ? bytes("") : abi.encodePacked(bytes4(0xdeadbeef), digest);
    }

    function _setImages(Call memory c, uint256 arg, bytes32 digest) internal pure returns (bytes memory) {
        uint256 count = _coin(arg, 5) % 4; // 0 is a malformed batch
        uint256[] memory ids = new uint256[](count);
        bytes32[] memory digests = new bytes32[](count);
        for (uint256 i; i < count; ++i) {
            // Consecutive ids, so that a batch of the pending tokens can succeed, and now and then one
            // repeats the first id (ImageAlreadySet: the whole batch must revert).
            ids[i] = _coin(arg, 6 + i) % 8 == 0 ? c.id : c.id + i;
            digests[i] = i == 0 ? digest : keccak256(abi.encode(digest, i));
        }
        return abi.encodeCall(GenImNFT.setImages, (ids, digests));
    }

    /// @dev Mostly the token's holder, so transfers can succeed; else the target.
    function _from(Call memory c, uint256 arg) internal view returns (address) {
        if (_coin(arg, 9) % 4 == 0) return c.target;
        return _holder(c.id);
    }

    function _holder(uint256 id) internal view returns (address) {
        try nft.ownerOf(id) returns (address holder) {
            return holder;
        } catch {
            return address(0);
        }
    }

    /*//////////////////////////////////////////////////////////////
                                 SNAPSHOTS
    //////////////////////////////////////////////////////////////*/

    function _state(Call memory c) internal view returns (State memory s) {
        s.settings = _settings(c);
        uint256 next = nft.nextTokenId();
        s.tokens = new Token[](next);
        for (uint256 id = 1; id < next; ++id) {
            s.tokens[id] = _token(id, c.caller);
            if (s.tokens[id].status == GenImNFT.Status.Pending) s.pending += s.tokens[id].escrow;
        }
        s.accounts = _accounts(c);
        s.balances = new uint256[](s.accounts.length);
        s.credits = new uint256[](s.accounts.length);
        for (uint256 i; i < s.accounts.length; ++i) {
            s.balances[i] = s.accounts[i].balance;
            s.credits[i] = nft.credit(s.accounts[i]);
            s.creditSum += s.credits[i];
        }
        s.nftBalance = address(nft).balance;
        if (c.fn == 0 && c.tier < 3) s.price = nft.price(c.tier);
        s.callerIsOracle = nft.isOracle(c.caller);
        s.callerServesFrom = nft.servesFrom(c.caller);
    }

    function _settings(Call memory c) internal view returns (Settings memory s) {
        for (uint8 tier; tier < 3; ++tier) {
            s.prices[tier] = nft.price(tier);
        }
        s.fee = nft.feeBps();
        s.timeout = nft.timeout();
        s.paused = nft.paused();
        s.owner = nft.owner();
        s.pendingOwner = nft.pendingOwner();
        s.oracleIsOracle = nft.isOracle(oracle);
        s.callerIsOracle = nft.isOracle(c.caller);
        s.targetIsOracle = c.target != address(0) && nft.isOracle(c.target);
        s.contractURI = keccak256(bytes(nft.contractURI()));
        s.placeholderURI = _placeholderWord();
        (s.royaltyReceiver, s.royalty) = nft.royaltyInfo(1, 1 ether);
    }

    function _token(uint256 id, address caller) internal view returns (Token memory t) {
        GenImNFT.Request memory r = nft.request(id);
        (t.status, t.tier, t.aspect, t.deadline) = (r.status, r.tier, r.aspect, r.deadline);
        (t.escrow, t.digest) = (r.escrow, r.metadataDigest);
        t.holder = _holder(id);
        if (t.holder != address(0)) {
            t.callerMay = caller == t.holder || nft.getApproved(id) == caller || nft.isApprovedForAll(t.holder, caller);
        }
    }

    function _accounts(Call memory c) internal view returns (address[] memory list) {
        address[9] memory all = [owner, oracle, alice, bob, heir, operator, address(sink), c.caller, c.target];
        list = new address[](all.length);
        uint256 n;
        for (uint256 i; i < all.length; ++i) {
            bool seen;
            for (uint256 j; j < n; ++j) {
                if (list[j] == all[i]) seen = true;
            }
            if (!seen) list[n++] = all[i];
        }
        assembly {
            mstore(list, n)
        }
    }

    /*//////////////////////////////////////////////////////////////
                                  CHECKS
    //////////////////////////////////////////////////////////////*/

    function _checkSolvency(Call memory c, bool ok, State memory post) internal pure {
        vm.assertGe(post.nftBalance, post.pending + post.creditSum, "solvent: balance >= pending escrow + credits");
        vm.assertEq(post.nftBalance, post.pending + post.creditSum, "balance == pending escrow + credits");
        if (!_payable(c.fn) && c.value != 0) vm.assertFalse(ok, "non-payable function took ether");
    }

    function _checkEther(Call memory c, bool ok, State memory pre, State memory post) internal view {
        uint256 before = pre.nftBalance;
        uint256 afterwards = post.nftBalance;
        for (uint256 i; i < pre.accounts.length; ++i) {
            before += pre.balances[i];
            afterwards += post.balances[i];
            if (!ok) vm.assertEq(post.balances[i], pre.balances[i], "a reverted call moved ether");
        }
        vm.assertEq(afterwards, before, "ether conserved");
        if (!ok) return;
        uint256 callerBefore = _balanceOf(pre, c.caller);
        uint256 callerAfter = _balanceOf(post, c.caller);
        if (c.fn == 0) vm.assertEq(callerAfter, callerBefore - pre.price, "mint keeps the price, no more");
        if (c.fn == 4) vm.assertEq(callerAfter, callerBefore + _creditOf(pre, c.caller), "withdraw pays the credit");
        if (c.fn == 3) {
            Token memory t = pre.tokens[c.id];
            bool paid = t.holder.balance == _balanceOf(pre, t.holder) + t.escrow;
            bool credited = nft.credit(t.holder) == _creditOf(pre, t.holder) + t.escrow;
            vm.assertTrue(paid != credited, "refund pays the holder the escrow, or else credits it");
            if (credited) vm.assertEq(t.holder, address(sink), "only the holder that refuses ether is credited");
        }
    }

    function _creditOf(State memory s, address account) internal pure returns (uint256) {
        for (uint256 i; i < s.accounts.length; ++i) {
            if (s.accounts[i] == account) return s.credits[i];
        }
        revert("not an involved account");
    }

    function _balanceOf(State memory s, address account) internal pure returns (uint256) {
        for (uint256 i; i < s.accounts.length; ++i) {
            if (s.accounts[i] == account) return s.balances[i];
        }
        revert("not an involved account");
    }

    function _checkSettings(Call memory c, bool ok, Settings memory pre, Settings memory post) internal pure {
        // A copy: `pre` is still read by the later checks.
        Settings memory expected = abi.decode(abi.encode(pre), (Settings));
        if (ok) _applySetting(c, expected);
        vm.assertEq(keccak256(abi.encode(post)), keccak256(abi.encode(expected)), "settings changed unexpectedly");
        if (c.caller != pre.owner && c.fn >= 5 && c.fn <= 14) vm.assertFalse(ok, "non-owner passed onlyOwner");
        if (c.fn == 15 && ok) vm.assertEq(c.caller, pre.pendingOwner, "only the pending owner accepts");
        if (c.fn == 15 && c.value == 0 && c.caller == pre.pendingOwner) vm.assertTrue(ok, "pending owner refused");
        if (c.caller == pre.owner && c.value == 0 && (c.fn == 9 || c.fn == 10 || c.fn == 12 || c.fn == 13)) {
            vm.assertTrue(ok, "owner call without argument checks failed");
        }
        if (c.fn == 21) vm.assertFalse(ok, "renounceOwnership is disabled");
        if (c.fn == 22) vm.assertFalse(ok, "plain transfer or unknown selector accepted");
    }

    /// @dev What a successful call of `c.fn` does to the settings (only the owner's calls, and acceptOwnership,
    /// can succeed and change them).
    function _applySetting(Call memory c, Settings memory s) internal pure {
        uint8 fn = c.fn;
        if (fn == 5) s.prices[c.tier] = c.param;
        if (fn == 6) {
            s.targetIsOracle = c.flag;
            if (c.target == c.caller) s.callerIsOracle = c.flag;
            if (c.target == ORACLE) s.oracleIsOracle = c.flag;
        }
        if (fn == 7) s.fee = c.param;
        if (fn == 8) s.timeout = c.param;
        if (fn == 9) s.placeholderURI = bytes32(bytes(NEW_PLACEHOLDER)) | bytes32(bytes(NEW_PLACEHOLDER).length * 2);
        if (fn == 10) s.contractURI = keccak256(bytes(NEW_CONTRACT_URI));
        if (fn == 11) (s.royaltyReceiver, s.royalty) = (c.target, 1 ether * c.param / 10_000);
        if (fn == 12) s.paused = true;
        if (fn == 13) s.paused = false;
        if (fn == 14) s.pendingOwner = c.target;
        if (fn == 15) (s.owner, s.pendingOwner) = (c.caller, address(0));
    }

    function _checkTokens(Call memory c, bool ok, State memory pre, State memory post) internal view {
        uint256 oldCount = pre.tokens.length;
        for (uint256 id = 1; id < oldCount; ++id) {
            Token memory a = pre.tokens[id];
            Token memory b = post.tokens[id];
            vm.assertEq(b.escrow, a.escrow, "escrow fixed");
            vm.assertEq(b.deadline, a.deadline, "deadline fixed");
            vm.assertEq(b.tier, a.tier, "tier fixed");
            vm.assertEq(b.aspect, a.aspect, "aspect fixed");
            if (b.digest != a.digest) {
                vm.assertTrue(ok && (c.fn == 1 || c.fn == 2), "image set by another call");
                vm.assertTrue(pre.callerIsOracle, "image set by a non-oracle");
                vm.assertGe(id, pre.callerServesFrom, "image set by an oracle authorised after the mint");
                vm.assertEq(a.digest, bytes32(0), "image changed");
                vm.assertLt(block.timestamp, a.deadline, "image set at or after the deadline");
                vm.assertEq(uint256(b.status), uint256(GenImNFT.Status.Fulfilled), "fulfilled");
            } else if (b.status != a.status) {
                vm.assertTrue(ok && c.fn == 3 && c.id == id, "status changed by another call");
                vm.assertEq(uint256(a.status), uint256(GenImNFT.Status.Pending), "refunded twice");
                vm.assertEq(uint256(b.status), uint256(GenImNFT.Status.Refunded), "refunded");
                vm.assertGe(block.timestamp, a.deadline, "refund before the deadline");
                vm.assertEq(b.holder, address(0), "refunded token burned");
            }
            if (b.holder != a.holder) {
                vm.assertTrue(ok && (a.callerMay || c.fn == 3), "token moved by someone not allowed");
                vm.assertTrue(c.fn == 3 || c.fn == 16 || c.fn == 19 || c.fn == 20, "token moved by another call");
            }
        }
        uint256 newCount = post.tokens.length;
        vm.assertLe(newCount, oldCount + (ok && c.fn == 0 ? 1 : 0), "minted without a successful mint");
        for (uint256 id = oldCount; id < newCount; ++id) {
            Token memory t = post.tokens[id];
            vm.assertEq(t.holder, c.caller, "minted to the caller");
            vm.assertEq(t.escrow, pre.price, "escrow is the price");
            vm.assertEq(t.aspect, c.aspect, "aspect as asked");
            vm.assertEq(uint256(t.status), uint256(GenImNFT.Status.Pending), "new token pending");
            vm.assertEq(t.deadline, block.timestamp + pre.settings.timeout, "deadline");
        }
        if (ok && c.fn == 0) vm.assertEq(newCount, oldCount + 1, "mint minted one token");
        if (c.fn == 0 && c.aspect >= 4) vm.assertFalse(ok, "unknown aspect accepted");
    }

    function _checkCredits(Call memory c, bool ok, State memory pre, State memory post) internal pure {
        bool ownerChanged = post.settings.owner != pre.settings.owner;
        for (uint256 i; i < pre.accounts.length; ++i) {
            address account = pre.accounts[i];
            if (!ok) vm.assertEq(post.credits[i], pre.credits[i], "a reverted call changed a credit");
            if (ownerChanged || account == c.caller) continue;
            vm.assertGe(post.credits[i], pre.credits[i], "someone else's credit shrank");
        }
        if (ok && c.fn == 4) {
            for (uint256 i; i < pre.accounts.length; ++i) {
                if (pre.accounts[i] == c.caller) vm.assertEq(post.credits[i], 0, "credit cleared by withdraw");
            }
        }
    }
}
