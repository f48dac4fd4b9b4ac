// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

// Hostile input (issues 4 and 14): one fuzz test, testFuzz_AnyCallerAnyValue, calls any of the contract's 26
// external entry points that can be sent a transaction (every state-changing function, plus the view
// renounceOwnership), or sends it plain ether or calldata matching no function, from a random caller (half the
// time the caller the function expects: owner, oracle, holder, buyer, relayer...; else one of eight named
// accounts, or any address), with random arguments and, where the fuzzer says so, random ether (also to
// non-payable functions, which must refuse it). Mints on both rails name the current oracle epoch, or now and
// then a stale or future one; USDC mints carry an EIP-3009 authorization of alice or bob (keys 3 and 4) for the
// tier's price, or now and then for another value.
// The state it starts from has tokens in every condition, on both rails: pending, pending past the deadline,
// fulfilled, held by a contract that refuses ether, held by a USDC-blacklisted account, approved to an
// operator; oracle credit and protocol fees in ETH and USDC, and a pending owner. After the call it asserts:
// - solvency per asset: the ETH balance equals pending ETH escrow plus all ETH credits (fees included), the
//   USDC balance equals usdcLiabilities(), which equals pending USDC escrow plus all USDC credits (only mint
//   takes ether: GenImNFT refuses it on solady's payable ERC-721 calls);
// - no ether or USDC is created or lost: the balances of all involved accounts plus the contract's are
//   conserved per asset, and a reverted call changes no balance in either;
// - settings (prices, fee, timeout, maximum price age, oracle epoch, paused, oracles, owner, pending owner,
//   URIs, royalty) change only when the owner calls (or the pending owner accepts), and then to the value
//   asked for; the epoch grows by one exactly when an account not yet an oracle is authorised;
// - each token's terms (tier, aspect, asset, escrow, deadline) are fixed; its holder, image or status change
//   only through a caller allowed to (holder/approved for transfer; anyone for a refund after the deadline,
//   which pays the holder in its asset or, if it refuses, credits it; an oracle authorised since before the
//   token's mint, before the deadline, for an image); an ETH mint goes to the caller for the price in wei
//   at the feed's rate, a USDC mint to the authorization's signer for the dollar price in USDC, in the
//   aspect asked for; a mint naming another epoch, an unknown aspect or a bad authorization is refused, and a
//   valid USDC mint succeeds; other accounts' credits do not shrink.
// Runs: 512 (foundry.toml [fuzz] runs), seed 0x6765, so the run is deterministic. Each run is one call from
// the state set up in setUp (forge resets the state between runs).

import {ERC721} from "solady/tokens/ERC721.sol";
import {GenImNFT} from "../../contracts/GenImNFT.sol";
import {Feeds} from "./utils/Feeds.sol";
import {GenImNFTSetup} from "./utils/GenImNFTSetup.sol";
import {Usdc} from "./utils/Usdc.sol";

/// @dev Holds a token and refuses ether: a refund of its ETH token credits it instead of paying it.
contract Sink {
    function mint(GenImNFT nft, uint8 tier) external payable returns (uint256) {
        return nft.mint{value: msg.value}("sink", tier, 0, nft.oracleEpoch());
    }
}

contract GenImNFTFuzzTest is GenImNFTSetup {
    Sink internal sink;
    address internal owner = vm.addr(1);
    address internal constant ORACLE = 0x2B5AD5c4795c026514f8317c7a215E218DcCD6cF; // vm.addr(2)
    address internal oracle = ORACLE;
    uint256 internal constant ALICE_KEY = 3;
    uint256 internal constant BOB_KEY = 4;
    address internal alice = vm.addr(ALICE_KEY);
    address internal bob = vm.addr(BOB_KEY);
    address internal heir = vm.addr(5);
    address internal operator = vm.addr(6);
    address internal banned = vm.addr(8); // holds a USDC token, blacklisted by USDC
    address[7] internal actors;

    uint256 internal constant FUNCTIONS = 27;
    bytes4 internal constant MINT_WITH_AUTHORIZATION_VRS = bytes4(
        keccak256(
            "mintWithAuthorization(string,uint8,uint8,uint256,address,uint256,uint256,bytes32,uint8,bytes32,bytes32)"
        )
    );
    string internal constant NEW_PLACEHOLDER = "ipfs://new-placeholder";
    string internal constant NEW_CONTRACT_URI = "ipfs://new-contract";
    uint256 internal sinkToken;

    struct Call {
        uint8 fn;
        uint8 tier;
        uint8 aspect;
        address caller;
        address target;
        address from; // the USDC buyer
        uint256 id;
        uint256 value;
        uint256 param;
        uint256 epoch; // the epoch a mint names
        uint256 promptLength;
        bool flag;
        bool goodSignature;
        bytes data;
    }

    struct Settings {
        uint256[3] prices;
        uint256 fee;
        uint256 timeout;
        uint256 maxPriceAge;
        uint256 epoch;
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
        GenImNFT.Asset asset;
        uint8 tier;
        uint8 aspect;
        uint40 deadline;
        uint256 escrow;
        bytes32 digest;
    }

    /// @dev One asset's side of the books: every involved account's balance and credit, and the contract's.
    struct Books {
        uint256[] balances;
        uint256[] credits;
        uint256 held; // the contract's balance
        uint256 pending; // pending escrow in this asset
        uint256 creditSum;
    }

    struct State {
        Settings settings;
        Token[] tokens; // index = token id; index 0 unused
        address[] accounts; // everyone whose ether, USDC or credit can move, without repeats
        Books eth;
        Books usdc;
        uint256 liabilities; // usdcLiabilities()
        uint256 priceUsd; // of the tier a mint asks for, or 0
        uint256 priceWei; // the same in wei now, or 0
        uint256 fromUsdc; // the USDC buyer's balance
        bool callerIsOracle;
        uint256 callerServesFrom;
    }

    function setUp() public {
        _deploy(owner, _one(oracle));
        vm.assertEq(ORACLE, vm.addr(2), "ORACLE constant");
        actors = [owner, oracle, alice, bob, heir, operator, banned];
        for (uint256 i; i < actors.length; ++i) {
            vm.deal(actors[i], 10 ether);
        }
        Usdc.mint(usdc, alice, 10 * DOLLAR);
        Usdc.mint(usdc, bob, 10 * DOLLAR);
        sink = new Sink();
        vm.deal(address(sink), 1 ether);
        uint256 basicWei = nft.priceInWei(0);
        vm.startPrank(alice);
        nft.mint{value: basicWei}("expired, alice", 0, 0, 1); // 1
        nft.mint{value: nft.priceInWei(1)}("fulfilled, alice", 1, 0, 1); // 2
        vm.stopPrank();
        vm.prank(bob);
        nft.mint{value: 1 ether}("expired, bob", 2, 0, 1); // 3
        sinkToken = sink.mint{value: basicWei}(nft, 0); // 4, expired; its refund credits the sink
        _mintUsdc(ALICE_KEY, 0, operator); // 5, expired
        _mintUsdc(BOB_KEY, 2, operator); // 6, fulfilled
        _mintUsdc(ALICE_KEY, 1, operator); // 7, held by a blacklisted account, refunded below: its USDC credit
        _mintUsdc(ALICE_KEY, 1, operator); // 8, expired, held by a blacklisted account: its refund credits it
        vm.startPrank(alice);
        nft.transferFrom(alice, banned, 7);
        nft.transferFrom(alice, banned, 8);
        vm.stopPrank();
        vm.startPrank(oracle);
        nft.setImage(2, keccak256("two"));
        nft.setImage(6, keccak256("six"));
        vm.stopPrank();
        vm.prank(usdcOwner);
        usdc.blacklist(banned);
        vm.warp(block.timestamp + 1 hours);
        Feeds.setPrice(ethUsd, ETH_USD);
        nft.refund(7);
        vm.prank(alice);
        nft.mint{value: basicWei}("pending, alice", 0, 0, 1); // 9
        vm.prank(bob);
        nft.mint{value: 1 ether}("pending, bob", 1, 0, 1); // 10
        vm.prank(alice);
        nft.mint{value: 1 ether}("pending, alice", 2, 0, 1); // 11
        vm.prank(bob);
        nft.mint{value: 1 ether}("pending, bob", 0, 0, 1); // 12
        _mintUsdc(BOB_KEY, 0, operator); // 13, pending
        _mintUsdc(ALICE_KEY, 2, bob); // 14, pending
        vm.prank(alice);
        nft.setApprovalForAll(operator, true);
        vm.prank(bob);
        nft.approve(alice, 10);
        vm.startPrank(owner);
        nft.setPlaceholderURI("ipfs://placeholder");
        nft.setDefaultRoyalty(owner, 250);
        nft.transferOwnership(heir);
        vm.stopPrank();
        // A short string lives in its slot: data, then its length times two in the last byte.
        vm.assertEq(_placeholderWord(), bytes32(bytes("ipfs://placeholder")) | bytes32(uint256(18 * 2)), "slot");
        vm.assertEq(nft.nextTokenId(), 15, "fourteen tokens");
        vm.assertEq(nft.usdcCredit(banned), PREMIUM_USD, "the blacklisted holder's USDC credit");
    }

    /// @dev The placeholder URI's storage word (slot 9, after Ownable2Step's two and the contract's seven): read
    /// there rather than through tokenURI, since any token may be refunded (burned) or set by one call.
    function _placeholderWord() internal view returns (bytes32) {
        return vm.load(address(nft), bytes32(uint256(9)));
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
        vm.assume(c.caller != address(nft) && c.caller != address(vm) && c.caller != usdcAdmin);
        vm.deal(c.caller, c.caller.balance + c.value);

        State memory pre = _state(c);
        _checkBooksExact(pre, "before the call");

        vm.prank(c.caller);
        (bool ok,) = address(nft).call{value: c.value}(c.data);

        State memory post = _state(c);
        _checkBooksExact(post, "after the call");
        if (!_payable(c.fn) && c.value != 0) vm.assertFalse(ok, "non-payable function took ether");
        _checkEther(c, ok, pre, post);
        _checkUsdc(c, ok, pre, post);
        _checkRefund(c, ok, pre);
        _checkSettings(c, ok, pre.settings, post.settings);
        _checkTokens(c, ok, pre, post);
        _checkMint(c, ok, pre, post);
        _checkCredits(c, ok, pre, post);
    }

    /*//////////////////////////////////////////////////////////////
                                 THE CALL
    //////////////////////////////////////////////////////////////*/

    function _payable(uint8 fn) internal pure returns (bool) {
        // Only mint takes ether; GenImNFT refuses it on solady's payable approve/transferFrom/safeTransferFrom.
        return fn == 0;
    }

    function _isUsdcMint(uint8 fn) internal pure returns (bool) {
        return fn == 22 || fn == 23;
    }

    function _isOwnerSetting(uint8 fn) internal pure returns (bool) {
        return (fn >= 5 && fn <= 14) || fn == 25;
    }

    function _build(uint8 which, uint8 who, address caller, uint256 value, uint256 arg, bytes32 digest)
        internal
        view
        returns (Call memory c)
    {
        // The fuzzer favours small and edge values: `arg` itself feeds the numeric arguments, where edges
        // matter, and hashes of it make the choices (a shifted `arg` would be 0 most of the time).
        c.fn = uint8(which % FUNCTIONS);
        uint256 pick = _coin(arg, 0) % 9;
        c.target = pick < 7 ? actors[pick] : pick == 7 ? address(sink) : address(uint160(uint256(digest)));
        c.id = _coin(arg, 1) % (nft.nextTokenId() + 1); // 0 and nextTokenId() do not exist
        c.flag = _coin(arg, 2) % 2 == 1;
        c.from = c.flag ? alice : bob;
        // Seven mints in eight name the current epoch; else the one before or the next.
        uint256 epoch = nft.oracleEpoch();
        uint256 epochPick = _coin(arg, 12) % 16;
        c.epoch = epochPick == 0 ? epoch - 1 : epochPick == 1 ? epoch + 1 : epoch;
        c.goodSignature = _coin(arg, 13) % 8 != 0;
        // The caller: half the time the one the function expects (so that calls get past the access checks
        // and exercise the payments), a quarter a named account, a quarter any address the fuzzer picks.
        uint256 mode = uint256(keccak256(abi.encode(who, arg))) % 8;
        if (mode < 4) caller = _expectedCaller(c);
        else if (mode < 6) caller = actors[who % 7];
        c.caller = caller;
        value = bound(value, 0, 2 ether);
        // Ether goes with mint always, and with an eighth of the calls of the other functions (which must
        // refuse it).
        c.value = c.fn == 0 || _coin(arg, 3) % 8 == 0 ? value : 0;
        c.data = _calldata(c, arg, digest);
    }

    function _coin(uint256 arg, uint256 k) internal pure returns (uint256) {
        return uint256(keccak256(abi.encode(arg, k)));
    }

    /// @dev Who may call `c.fn`: a buyer to mint in ETH, anyone (a relayer, or the buyer) to mint in USDC, the
    /// owner for settings, the pending owner to accept, the oracle to set images (and to withdraw its credit, or
    /// the owner its fees, or the blacklisted holder its USDC credit), the token's holder or approved account
    /// for refunds and transfers.
    function _expectedCaller(Call memory c) internal view returns (address) {
        uint8 fn = c.fn;
        if (fn == 0 || fn == 18) return alice;
        if (_isUsdcMint(fn)) return c.flag ? operator : c.from;
        if (fn == 1 || fn == 2) return oracle;
        if (fn == 4 || fn == 24) return c.flag ? oracle : _coin(c.id, 7) % 2 == 0 ? owner : banned;
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
        if (fn == 0 || _isUsdcMint(fn)) {
            c.tier = uint8(arg % 4); // tier 3 does not exist
            c.aspect = uint8(_coin(arg, 11) % 5); // aspect 4 does not exist
            c.promptLength = (arg >> 2) % 1002;
            if (fn == 0) {
                return abi.encodeCall(GenImNFT.mint, (string(new bytes(c.promptLength)), c.tier, c.aspect, c.epoch));
            }
            return _mintWithAuthorization(c, arg);
        }
        if (fn == 1) return abi.encodeCall(GenImNFT.setImage, (c.id, digest));
        if (fn == 2) return _setImages(c, arg, digest);
        if (fn == 3) return abi.encodeCall(GenImNFT.refund, (c.id));
        if (fn == 4) return abi.encodeCall(GenImNFT.withdraw, ());
        if (fn == 5) {
            // Three times in four a representable price, else any number.
            c.tier = uint8(_coin(arg, 4) % 4);
            c.param = _coin(arg, 10) % 4 == 0 ? arg : arg % 1e10;
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
        if (fn == 24) return abi.encodeCall(GenImNFT.withdrawTo, (payable(c.target)));
        if (fn == 25) {
            c.param = uint32(c.flag ? arg : 1 minutes + arg % (1 days - 1 minutes + 1));
            return abi.encodeCall(GenImNFT.setMaxPriceAge, (uint32(c.param)));
        }
        // No receive() and no fallback: plain ether, or a call to no function, is refused.
        return c.flag ? bytes("") : abi.encodePacked(bytes4(0xdeadbeef), digest);
    }

    /// @dev A USDC mint paid by `c.from`'s authorization for the tier's price (or, now and then, one unit more),
    /// with a nonce of its own, in the `bytes` form (fn 22) or the `v, r, s` form (fn 23).
    function _mintWithAuthorization(Call memory c, uint256 arg) internal view returns (bytes memory) {
        uint256 price = c.tier < 3 ? nft.price(c.tier) : 0;
        uint256 signed = c.goodSignature ? price : price + 1;
        bytes32 nonce = keccak256(abi.encode("fuzz nonce", arg));
        uint256 key = c.from == alice ? ALICE_KEY : BOB_KEY;
        (uint8 v, bytes32 r, bytes32 s) = Usdc.signTransfer(usdc, key, address(nft), signed, 0, FOREVER, nonce);
        string memory prompt = string(new bytes(c.promptLength));
        if (c.fn == 22) {
            bytes memory sig = abi.encodePacked(r, s, v);
            return abi.encodeWithSignature(
                "mintWithAuthorization(string,uint8,uint8,uint256,address,uint256,uint256,bytes32,bytes)",
                prompt,
                c.tier,
                c.aspect,
                c.epoch,
                c.from,
                0,
                FOREVER,
                nonce,
                sig
            );
        }
        return abi.encodeWithSelector(
            MINT_WITH_AUTHORIZATION_VRS, prompt, c.tier, c.aspect, c.epoch, c.from, 0, FOREVER, nonce, v, r, s
        );
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
            Token memory t = _token(id, c.caller);
            s.tokens[id] = t;
            if (t.status != GenImNFT.Status.Pending) continue;
            if (t.asset == GenImNFT.Asset.ETH) s.eth.pending += t.escrow;
            else s.usdc.pending += t.escrow;
        }
        s.accounts = _accounts(c);
        uint256 n = s.accounts.length;
        (s.eth.balances, s.eth.credits, s.usdc.balances, s.usdc.credits) =
        (new uint256[](n), new uint256[](n), new uint256[](n), new uint256[](n));
        for (uint256 i; i < n; ++i) {
            address account = s.accounts[i];
            s.eth.balances[i] = account.balance;
            s.eth.credits[i] = nft.credit(account);
            s.eth.creditSum += s.eth.credits[i];
            s.usdc.balances[i] = usdc.balanceOf(account);
            s.usdc.credits[i] = nft.usdcCredit(account);
            s.usdc.creditSum += s.usdc.credits[i];
        }
        s.eth.held = address(nft).balance;
        s.usdc.held = usdc.balanceOf(address(nft));
        s.liabilities = nft.usdcLiabilities();
        if ((c.fn == 0 || _isUsdcMint(c.fn)) && c.tier < 3) {
            s.priceUsd = nft.price(c.tier);
            s.priceWei = nft.priceInWei(c.tier);
        }
        s.fromUsdc = usdc.balanceOf(c.from);
        s.callerIsOracle = nft.isOracle(c.caller);
        s.callerServesFrom = nft.servesFrom(c.caller);
    }

    function _settings(Call memory c) internal view returns (Settings memory s) {
        for (uint8 tier; tier < 3; ++tier) {
            s.prices[tier] = nft.price(tier);
        }
        s.fee = nft.feeBps();
        s.timeout = nft.timeout();
        s.maxPriceAge = nft.maxPriceAge();
        s.epoch = nft.oracleEpoch();
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
        (t.status, t.asset, t.tier, t.aspect, t.deadline) = (r.status, r.asset, r.tier, r.aspect, r.deadline);
        (t.escrow, t.digest) = (r.escrow, r.metadataDigest);
        t.holder = _holder(id);
        if (t.holder != address(0)) {
            t.callerMay = caller == t.holder || nft.getApproved(id) == caller || nft.isApprovedForAll(t.holder, caller);
        }
    }

    function _accounts(Call memory c) internal view returns (address[] memory list) {
        address[10] memory all = [owner, oracle, alice, bob, heir, operator, banned, address(sink), c.caller, c.target];
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

    function _indexOf(State memory s, address account) internal pure returns (uint256) {
        for (uint256 i; i < s.accounts.length; ++i) {
            if (s.accounts[i] == account) return i;
        }
        revert("not an involved account");
    }

    /*//////////////////////////////////////////////////////////////
                                  CHECKS
    //////////////////////////////////////////////////////////////*/

    /// @dev Per asset: the balance is exactly the books (no forced ether or USDC in these runs).
    function _checkBooksExact(State memory s, string memory when) internal pure {
        vm.assertEq(s.eth.held, s.eth.pending + s.eth.creditSum, string.concat("ETH: balance == books ", when));
        vm.assertGe(s.usdc.held, s.liabilities, string.concat("USDC: balance >= liabilities ", when));
        vm.assertEq(s.usdc.held, s.liabilities, string.concat("USDC: balance == liabilities ", when));
        vm.assertEq(s.liabilities, s.usdc.pending + s.usdc.creditSum, string.concat("USDC: liabilities ", when));
    }

    /// @dev The sums of `b` over the involved accounts and the contract are equal; a reverted call moved nothing.
    function _checkConserved(Books memory a, Books memory b, bool ok, string memory asset) internal pure {
        uint256 before = a.held;
        uint256 afterwards = b.held;
        for (uint256 i; i < a.balances.length; ++i) {
            before += a.balances[i];
            afterwards += b.balances[i];
            if (!ok) vm.assertEq(b.balances[i], a.balances[i], string.concat(asset, ": a reverted call moved it"));
        }
        vm.assertEq(afterwards, before, string.concat(asset, " conserved"));
    }

    function _checkEther(Call memory c, bool ok, State memory pre, State memory post) internal pure {
        _checkConserved(pre.eth, post.eth, ok, "ether");
        if (!ok) return;
        uint256 caller = _indexOf(pre, c.caller);
        uint256 before = pre.eth.balances[caller];
        uint256 afterwards = post.eth.balances[caller];
        if (c.fn == 0) vm.assertEq(afterwards, before - pre.priceWei, "mint keeps the price in wei, no more");
        if (c.fn == 4) vm.assertEq(afterwards, before + pre.eth.credits[caller], "withdraw pays the ETH credit");
        if (c.fn == 24) {
            uint256 target = _indexOf(pre, c.target);
            vm.assertEq(
                post.eth.balances[target], pre.eth.balances[target] + pre.eth.credits[caller], "withdrawTo pays ETH"
            );
        }
    }

    function _checkUsdc(Call memory c, bool ok, State memory pre, State memory post) internal pure {
        _checkConserved(pre.usdc, post.usdc, ok, "USDC");
        if (!ok) return;
        uint256 caller = _indexOf(pre, c.caller);
        if (c.fn == 4) {
            vm.assertEq(
                post.usdc.balances[caller], pre.usdc.balances[caller] + pre.usdc.credits[caller], "withdraw pays USDC"
            );
        }
        if (c.fn == 24) {
            uint256 target = _indexOf(pre, c.target);
            vm.assertEq(
                post.usdc.balances[target],
                pre.usdc.balances[target] + pre.usdc.credits[caller],
                "withdrawTo pays the USDC credit"
            );
        }
        if (_isUsdcMint(c.fn)) {
            uint256 from = _indexOf(pre, c.from);
            vm.assertEq(post.usdc.balances[from], pre.usdc.balances[from] - pre.priceUsd, "exactly the price pulled");
        }
    }

    /// @dev A refund pays the holder the escrow in its asset, or else credits it; only the holders that refuse
    /// (the sink ether, the blacklisted account USDC) are credited.
    function _checkRefund(Call memory c, bool ok, State memory pre) internal view {
        if (!ok || c.fn != 3) return;
        Token memory t = pre.tokens[c.id];
        uint256 i = _indexOf(pre, t.holder);
        bool paid;
        bool credited;
        if (t.asset == GenImNFT.Asset.ETH) {
            paid = t.holder.balance == pre.eth.balances[i] + t.escrow;
            credited = nft.credit(t.holder) == pre.eth.credits[i] + t.escrow;
            if (credited) vm.assertEq(t.holder, address(sink), "only the holder that refuses ether is credited");
        } else {
            paid = usdc.balanceOf(t.holder) == pre.usdc.balances[i] + t.escrow;
            credited = nft.usdcCredit(t.holder) == pre.usdc.credits[i] + t.escrow;
            if (credited) vm.assertEq(t.holder, banned, "only the holder USDC refuses is credited");
        }
        vm.assertTrue(paid != credited, "refund pays the holder the escrow, or else credits it");
    }

    function _checkSettings(Call memory c, bool ok, Settings memory pre, Settings memory post) internal pure {
        // A copy: `pre` is still read by the later checks.
        Settings memory expected = abi.decode(abi.encode(pre), (Settings));
        if (ok) _applySetting(c, expected);
        vm.assertEq(keccak256(abi.encode(post)), keccak256(abi.encode(expected)), "settings changed unexpectedly");
        if (c.caller != pre.owner && _isOwnerSetting(c.fn)) vm.assertFalse(ok, "non-owner passed onlyOwner");
        if (c.fn == 15 && ok) vm.assertEq(c.caller, pre.pendingOwner, "only the pending owner accepts");
        if (c.fn == 15 && c.value == 0 && c.caller == pre.pendingOwner) vm.assertTrue(ok, "pending owner refused");
        if (c.caller == pre.owner && c.value == 0 && (c.fn == 9 || c.fn == 10 || c.fn == 12 || c.fn == 13)) {
            vm.assertTrue(ok, "owner call without argument checks failed");
        }
        if (c.fn == 21) vm.assertFalse(ok, "renounceOwnership is disabled");
        if (c.fn == 26) vm.assertFalse(ok, "plain transfer or unknown selector accepted");
    }

    /// @dev What a successful call of `c.fn` does to the settings (only the owner's calls, and acceptOwnership,
    /// can succeed and change them).
    function _applySetting(Call memory c, Settings memory s) internal pure {
        uint8 fn = c.fn;
        if (fn == 5) s.prices[c.tier] = c.param;
        if (fn == 6) {
            if (c.flag && !s.targetIsOracle) ++s.epoch; // the oracle set grew
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
        if (fn == 25) s.maxPriceAge = c.param;
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
            vm.assertEq(uint256(b.asset), uint256(a.asset), "asset fixed");
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
    }

    /// @dev New tokens come from a successful mint only, one each, on the terms asked for and paid.
    function _checkMint(Call memory c, bool ok, State memory pre, State memory post) internal view {
        uint256 oldCount = pre.tokens.length;
        uint256 newCount = post.tokens.length;
        bool mint = c.fn == 0 || _isUsdcMint(c.fn);
        vm.assertLe(newCount, oldCount + (ok && mint ? 1 : 0), "minted without a successful mint");
        if (!mint) return;
        if (ok) vm.assertEq(newCount, oldCount + 1, "mint minted one token");
        if (c.aspect >= 4) vm.assertFalse(ok, "unknown aspect accepted");
        if (c.epoch != pre.settings.epoch) vm.assertFalse(ok, "a mint naming another oracle epoch went through");
        if (_isUsdcMint(c.fn) && !c.goodSignature) vm.assertFalse(ok, "a USDC mint without a matching authorization");
        if (_isUsdcMint(c.fn) && _usdcMintValid(c, pre)) vm.assertTrue(ok, "a valid USDC mint was refused");
        if (!ok) return;
        Token memory t = post.tokens[oldCount];
        vm.assertEq(t.aspect, c.aspect, "aspect as asked");
        vm.assertEq(t.tier, c.tier, "tier as asked");
        vm.assertEq(uint256(t.status), uint256(GenImNFT.Status.Pending), "new token pending");
        vm.assertEq(t.deadline, block.timestamp + pre.settings.timeout, "deadline");
        if (c.fn == 0) {
            vm.assertEq(t.holder, c.caller, "an ETH mint goes to the caller");
            vm.assertEq(uint256(t.asset), uint256(GenImNFT.Asset.ETH), "asset ETH");
            vm.assertEq(t.escrow, pre.priceWei, "escrow is the price in wei");
        } else {
            vm.assertEq(t.holder, c.from, "a USDC mint goes to the authorization's signer");
            vm.assertEq(uint256(t.asset), uint256(GenImNFT.Asset.USDC), "asset USDC");
            vm.assertEq(t.escrow, pre.priceUsd, "escrow is the price in USDC");
        }
    }

    function _usdcMintValid(Call memory c, State memory pre) internal pure returns (bool) {
        return c.goodSignature && c.value == 0 && c.tier < 3 && pre.priceUsd != 0 && c.aspect < 4 && c.promptLength >= 1
            && c.promptLength <= 1000 && !pre.settings.paused && c.epoch == pre.settings.epoch
            && pre.fromUsdc >= pre.priceUsd;
    }

    function _checkCredits(Call memory c, bool ok, State memory pre, State memory post) internal pure {
        bool ownerChanged = post.settings.owner != pre.settings.owner;
        for (uint256 i; i < pre.accounts.length; ++i) {
            address account = pre.accounts[i];
            if (!ok) {
                vm.assertEq(post.eth.credits[i], pre.eth.credits[i], "a reverted call changed an ETH credit");
                vm.assertEq(post.usdc.credits[i], pre.usdc.credits[i], "a reverted call changed a USDC credit");
            }
            if (ownerChanged || account == c.caller) continue;
            vm.assertGe(post.eth.credits[i], pre.eth.credits[i], "someone else's ETH credit shrank");
            vm.assertGe(post.usdc.credits[i], pre.usdc.credits[i], "someone else's USDC credit shrank");
        }
        if (ok && (c.fn == 4 || c.fn == 24)) {
            uint256 caller = _indexOf(pre, c.caller);
            vm.assertEq(post.eth.credits[caller], 0, "ETH credit cleared by withdraw");
            vm.assertEq(post.usdc.credits[caller], 0, "USDC credit cleared by withdraw");
        }
    }
}
