// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

// Hostile callers (issue 4): contracts that re-enter GenImNFT from the ether it sends them.
// - (a) `mint`: the excess refund's receive() re-enters mint, and tries refund/withdraw/setImage of tokens
//   that are not its to take.
// - (b) `refund`: the refund payment's receive() refunds the same token again, and another of its tokens,
//   within the REFUND_GAS a refund forwards; a heavier script cannot run from a refund at all.
// - (c) `withdraw`: an authorised oracle (and an owner-oracle) with credit re-enters withdraw, and earns
//   new credit from inside the callback.
// - griefing: a holder whose receive() reverts cannot block its refund: anyone may refund it after the
//   deadline and the escrow becomes the holder's credit; nobody else's refund is affected.
// - consent at mint: an oracle authorised after a token's mint cannot settle it, even from a callback.
// - stranded escrow (audit, low): a stranger refunds, at the deadline, a token held by a contract that refuses
//   ether; the escrow becomes that contract's credit, which it takes out with withdrawTo(recipient).
// - refund gas (audit, info): a holder whose receive() burns gas costs the refund's caller at most about
//   REFUND_GAS plus the refund's own cost, and is credited; a holder that needs less is paid.
// - payable ERC-721 entry points: solady's approve/transferFrom/safeTransferFrom are payable, and ether sent
//   with them is kept outside every book (documented below, as found).
// Mints pay the tier's dollar price in wei at the ETH/USD feed's rate ($3,000 per ether, Chainlink's
// MockV3Aggregator) and name the oracle epoch the caller read; USDC (Circle's FiatTokenV2_2) is deployed and
// its books checked too.
// Each attack runs in two flavours: the attacker catches the inner revert (the outer call then succeeds
// once), or lets it bubble out of receive() (the outer call then reverts as a whole with TransferFailed,
// which masks the inner error). Every test checks exact balances of the attacker and the contract and
// that the contract's balance equals pending escrow plus credits.
// All tests here are unit tests: one run each, no fuzzing (the fuzz settings in foundry.toml do not apply).

import {ERC721} from "solady/tokens/ERC721.sol";
import {GenImNFT} from "../../contracts/GenImNFT.sol";
import {GenImNFTSetup} from "./utils/GenImNFTSetup.sol";

/// @dev An attacker whose receive() runs a script of calls into the contract, once: on the first payment
/// after {arm}. Payments that arrive while the script runs (a nested refund, say) are just accepted.
/// In strict mode an inner revert is re-thrown from receive(), so the contract's payment fails; otherwise
/// each inner call's success and return or revert data are recorded for the test to check.
contract Reenterer {
    GenImNFT internal immutable nft;
    bytes[] internal _calls;
    uint256[] internal _values;
    bool internal _armed;
    bool public strict;
    uint256 public callbacks;
    uint256 public received;
    bool[] internal _oks;
    bytes[] internal _returns;

    constructor(GenImNFT nft_) {
        nft = nft_;
    }

    /// @dev The script for the next payment: `calls[i]` is sent to the contract with `values[i]` wei.
    function arm(bytes[] calldata calls, uint256[] calldata values, bool strict_) external {
        delete _calls;
        delete _values;
        delete _oks;
        delete _returns;
        for (uint256 i; i < calls.length; ++i) {
            _calls.push(calls[i]);
            _values.push(values[i]);
        }
        strict = strict_;
        _armed = true;
    }

    /// @dev Any call into the contract as this account, paying `value` from its own balance (set-up steps
    /// and the outer call of an attack).
    function exec(bytes calldata data, uint256 value) external returns (bytes memory) {
        (bool ok, bytes memory ret) = address(nft).call{value: value}(data);
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        return ret;
    }

    function outcomes() external view returns (uint256) {
        return _oks.length;
    }

    function outcome(uint256 i) external view returns (bool ok, bytes memory ret) {
        return (_oks[i], _returns[i]);
    }

    receive() external payable {
        ++callbacks;
        received += msg.value;
        if (!_armed) return;
        _armed = false;
        for (uint256 i; i < _calls.length; ++i) {
            (bool ok, bytes memory ret) = address(nft).call{value: _values[i]}(_calls[i]);
            if (!ok && strict) {
                assembly {
                    revert(add(ret, 0x20), mload(ret))
                }
            }
            _oks.push(ok);
            _returns.push(ret);
        }
    }
}

/// @dev A holder that refuses all ether: it can mint at the exact price, approve and transfer.
contract RefusingHolder {
    function exec(GenImNFT nft, bytes calldata data, uint256 value) external returns (bytes memory) {
        (bool ok, bytes memory ret) = address(nft).call{value: value}(data);
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        return ret;
    }

    receive() external payable {
        revert("no ether, thanks");
    }
}

/// @dev Re-enters refund from inside a refund's own payment, within the REFUND_GAS that payment carries: on the
/// first payment after {arm} it refunds `same` (the token being refunded) and then `other`. Its slots start
/// non-zero so that each write costs 2,900 gas rather than 20,000: the whole script fits the refund's gas.
contract LeanRefundReenterer {
    GenImNFT internal immutable nft;
    // [0..127] same, [128..254] other, [255] armed; 1 when disarmed.
    uint256 internal _script = 1;
    /// @dev The inner refund of `same`: its revert's selector, or 1 if it never ran.
    uint256 public sameTokenError = 1;
    /// @dev 2 once the inner refund of `other` succeeded.
    uint256 public otherRefunded = 1;
    /// @dev 1 + the payments received.
    uint256 public payments = 1;

    constructor(GenImNFT nft_) {
        nft = nft_;
    }

    function arm(uint256 same, uint256 other) external {
        _script = same | (other << 128) | (uint256(1) << 255);
    }

    receive() external payable {
        ++payments;
        uint256 script = _script;
        if (script >> 255 == 0) return;
        _script = 1;
        try nft.refund(script & type(uint128).max) {}
        catch (bytes memory reason) {
            sameTokenError = uint32(bytes4(reason));
        }
        try nft.refund((script >> 128) & ((uint256(1) << 127) - 1)) {
            otherRefunded = 2;
        } catch {}
    }
}

/// @dev A holder whose receive() burns every unit of gas it is given.
contract GasBurner {
    uint256 public spins;

    function exec(GenImNFT nft, bytes calldata data) external returns (bytes memory) {
        (bool ok, bytes memory ret) = address(nft).call(data);
        if (!ok) {
            assembly {
                revert(add(ret, 0x20), mload(ret))
            }
        }
        return ret;
    }

    receive() external payable {
        while (gasleft() > 0) {
            ++spins;
        }
    }
}

/// @dev A holder whose receive() does a little work (one new storage slot, about 22,100 gas): within
/// REFUND_GAS, so its refund is paid, not credited.
contract ModestReceiver {
    uint256 public payments;

    receive() external payable {
        ++payments;
    }
}

contract GenImNFTAttackTest is GenImNFTSetup {
    /// @dev Printed by `forge test -vv`.
    event log_named_uint(string key, uint256 val);

    uint256 internal constant BOB_KEY = 4;
    Reenterer internal attacker;
    address internal owner = vm.addr(1);
    address internal oracle = vm.addr(2);
    address internal alice = vm.addr(3);
    address internal bob = vm.addr(4);
    address internal carol = vm.addr(5);

    // The tiers' prices in wei at $3,000 per ether (checked against priceInWei in setUp).
    uint256 internal basicWei = 33_334 gwei;
    uint256 internal premiumWei = 100_000 gwei;
    uint256 internal ultraWei = 266_667 gwei;
    bytes32 internal constant DIGEST = keccak256("metadata");

    // Accounts that may hold credit; the books sum their credits (the owner's includes the fees).
    address[] internal _creditors;
    // Alice's token, minted in setUp: money of a bystander that a double payment would take.
    uint256 internal victim;

    function setUp() public {
        _deploy(owner, _one(oracle));
        vm.assertEq(nft.priceInWei(0), basicWei, "basic in wei");
        vm.assertEq(nft.priceInWei(1), premiumWei, "premium in wei");
        vm.assertEq(nft.priceInWei(2), ultraWei, "ultra in wei");
        attacker = new Reenterer(nft);
        vm.deal(alice, 100 ether);
        vm.deal(bob, 100 ether);
        vm.deal(address(attacker), 10 ether);
        _creditors.push(owner);
        _creditors.push(oracle);
        _creditors.push(address(attacker));
        vm.prank(alice);
        victim = nft.mint{value: ultraWei}("a lighthouse at dawn", 2, 0, 1);
    }

    /*//////////////////////////////////////////////////////////////
                                 HELPERS
    //////////////////////////////////////////////////////////////*/

    function _pendingEscrow() internal view returns (uint256 pending) {
        uint256 next = nft.nextTokenId();
        for (uint256 id = 1; id < next; ++id) {
            GenImNFT.Request memory r = nft.request(id);
            if (r.status == GenImNFT.Status.Pending && r.asset == GenImNFT.Asset.ETH) pending += r.escrow;
        }
    }

    function _credits() internal view returns (uint256 sum) {
        for (uint256 i; i < _creditors.length; ++i) {
            sum += nft.credit(_creditors[i]);
        }
    }

    /// @dev The contract holds exactly what it owes, per asset: pending escrow plus credits (fees included).
    function _assertBooks() internal view {
        vm.assertEq(address(nft).balance, _pendingEscrow() + _credits(), "balance == pending escrow + credits");
        vm.assertEq(usdc.balanceOf(address(nft)), nft.usdcLiabilities(), "USDC balance == USDC books");
    }

    function _script(bytes memory call, uint256 value)
        internal
        pure
        returns (bytes[] memory calls, uint256[] memory v)
    {
        calls = new bytes[](1);
        v = new uint256[](1);
        (calls[0], v[0]) = (call, value);
    }

    function _attackerMint(uint8 tier) internal returns (uint256) {
        bytes memory ret =
            attacker.exec(abi.encodeCall(GenImNFT.mint, ("mine", tier, 0, nft.oracleEpoch())), nft.priceInWei(tier));
        return abi.decode(ret, (uint256));
    }

    function _assertOutcome(uint256 i, bool ok, bytes memory expected, string memory what) internal view {
        (bool gotOk, bytes memory got) = attacker.outcome(i);
        if (ok) vm.assertTrue(gotOk, what);
        else vm.assertFalse(gotOk, what);
        vm.assertEq(keccak256(got), keccak256(expected), what);
    }

    function _assertStatus(uint256 id, GenImNFT.Status status, string memory what) internal view {
        vm.assertEq(uint256(nft.request(id).status), uint256(status), what);
    }

    /*//////////////////////////////////////////////////////////////
                      (a) RE-ENTERING MINT FROM THE EXCESS
    //////////////////////////////////////////////////////////////*/

    /// The excess refund re-enters mint with that excess: two tokens, two escrows, nothing paid twice.
    /// The outer mint succeeds; the id was taken before the payment, so the inner mint gets the next one.
    function test_MintReentryFromExcessMintsNextIdAndPaysEachOnce() public {
        (bytes[] memory calls, uint256[] memory values) =
            _script(abi.encodeCall(GenImNFT.mint, ("again", 0, 0, 1)), basicWei);
        attacker.arm(calls, values, false);
        uint256 attackerBefore = address(attacker).balance;
        uint256 nftBefore = address(nft).balance;

        bytes memory ret = attacker.exec(abi.encodeCall(GenImNFT.mint, ("first", 0, 0, 1)), 2 * basicWei);

        uint256 outer = abi.decode(ret, (uint256));
        (bool ok, bytes memory innerRet) = attacker.outcome(0);
        vm.assertTrue(ok, "inner mint succeeded");
        uint256 inner = abi.decode(innerRet, (uint256));
        vm.assertEq(outer, victim + 1, "outer id");
        vm.assertEq(inner, victim + 2, "inner id is the next one, not a reuse");
        vm.assertEq(nft.nextTokenId(), victim + 3, "two ids used");
        vm.assertEq(nft.ownerOf(outer), address(attacker), "outer holder");
        vm.assertEq(nft.ownerOf(inner), address(attacker), "inner holder");
        vm.assertEq(nft.request(outer).escrow, basicWei, "outer escrow");
        vm.assertEq(nft.request(inner).escrow, basicWei, "inner escrow");
        _assertStatus(outer, GenImNFT.Status.Pending, "outer pending");
        _assertStatus(inner, GenImNFT.Status.Pending, "inner pending");
        vm.assertEq(attacker.callbacks(), 1, "one excess refund (the inner mint paid exactly)");
        vm.assertEq(attacker.received(), basicWei, "excess returned once");
        vm.assertEq(address(attacker).balance, attackerBefore - 2 * basicWei, "attacker paid two prices");
        vm.assertEq(address(nft).balance, nftBefore + 2 * basicWei, "contract holds two escrows");
        _assertBooks();
    }

    /// From the excess refund the attacker tries to take what is not its own: a bystander's expired token
    /// (anyone may refund it, but the escrow goes to the bystander), its own brand-new token, a withdrawal
    /// without credit, an image without being an oracle. Only the refund of its own expired token pays the
    /// attacker, once. The outer mint succeeds.
    function test_MintReentryCannotTakeOthersEscrow() public {
        uint256 own = _attackerMint(1);
        vm.warp(block.timestamp + 1 hours); // the victim's and `own`'s deadlines pass
        uint256 fresh = nft.nextTokenId();
        uint256 freshDeadline = block.timestamp + nft.timeout();

        bytes[] memory calls = new bytes[](5);
        uint256[] memory values = new uint256[](5);
        calls[0] = abi.encodeCall(GenImNFT.refund, (victim));
        calls[1] = abi.encodeCall(GenImNFT.refund, (fresh));
        calls[2] = abi.encodeCall(GenImNFT.withdraw, ());
        calls[3] = abi.encodeCall(GenImNFT.setImage, (fresh, DIGEST));
        calls[4] = abi.encodeCall(GenImNFT.refund, (own));
        attacker.arm(calls, values, false);
        uint256 attackerBefore = address(attacker).balance;
        uint256 nftBefore = address(nft).balance;
        uint256 aliceBefore = alice.balance;

        attacker.exec(abi.encodeCall(GenImNFT.mint, ("first", 0, 0, 1)), basicWei + 1 ether);

        _assertOutcome(0, true, "", "bystander's token refunded, to the bystander");
        _assertOutcome(
            1,
            false,
            abi.encodeWithSelector(GenImNFT.DeadlineNotReached.selector, fresh, freshDeadline),
            "own fresh token"
        );
        _assertOutcome(
            2, false, abi.encodeWithSelector(GenImNFT.NothingToWithdraw.selector, address(attacker)), "no credit"
        );
        _assertOutcome(3, false, abi.encodeWithSelector(GenImNFT.NotOracle.selector, address(attacker)), "not oracle");
        _assertOutcome(4, true, "", "own expired token refunds");
        vm.assertEq(attacker.callbacks(), 2, "excess refund, then the nested refund of `own`");
        vm.assertEq(alice.balance, aliceBefore + ultraWei, "the bystander got its escrow");
        _assertStatus(victim, GenImNFT.Status.Refunded, "victim refunded");
        _assertStatus(own, GenImNFT.Status.Refunded, "own refunded");
        _assertStatus(fresh, GenImNFT.Status.Pending, "fresh pending");
        vm.assertEq(address(attacker).balance, attackerBefore - basicWei + premiumWei, "paid one price, got own escrow");
        vm.assertEq(address(nft).balance, nftBefore + basicWei - premiumWei - ultraWei, "+fresh escrow -own -victim's");
        _assertBooks();
    }

    /// If the attacker lets its inner revert escape receive(), the excess cannot be returned: the whole mint
    /// reverts with TransferFailed (the inner NothingToWithdraw is not what surfaces), and nothing changed.
    function test_RevertWhen_MintReentryRevertEscapesReceive() public {
        vm.warp(block.timestamp + 1 hours);
        (bytes[] memory calls, uint256[] memory values) = _script(abi.encodeCall(GenImNFT.withdraw, ()), 0);
        attacker.arm(calls, values, true);
        uint256 attackerBefore = address(attacker).balance;
        uint256 nftBefore = address(nft).balance;
        uint256 next = nft.nextTokenId();

        vm.expectRevert(abi.encodeWithSelector(GenImNFT.TransferFailed.selector, address(attacker), 1 ether));
        attacker.exec(abi.encodeCall(GenImNFT.mint, ("first", 0, 0, 1)), basicWei + 1 ether);

        vm.assertEq(nft.nextTokenId(), next, "no token minted");
        vm.assertEq(nft.balanceOf(address(attacker)), 0, "attacker holds nothing");
        vm.assertEq(address(attacker).balance, attackerBefore, "attacker balance unchanged");
        vm.assertEq(address(nft).balance, nftBefore, "contract balance unchanged");
        vm.assertEq(nft.ownerOf(victim), alice, "victim untouched");
        _assertBooks();
    }

    /*//////////////////////////////////////////////////////////////
                    (b) RE-ENTERING REFUND FROM THE REFUND
    //////////////////////////////////////////////////////////////*/

    /// The refund payment re-enters refund on the same token (RequestNotPending: Refunded, it was marked and
    /// burned before the payment) and on another expired token of the holder (pays, once), all within the
    /// REFUND_GAS the payment carries. The outer refund succeeds; the holder gets exactly the two escrows.
    function test_RefundReentryCannotRefundSameTokenTwice() public {
        LeanRefundReenterer holder = new LeanRefundReenterer(nft);
        uint256 x = _mintEth(alice, 1);
        uint256 y = _mintEth(alice, 0);
        vm.startPrank(alice);
        nft.transferFrom(alice, address(holder), x);
        nft.transferFrom(alice, address(holder), y);
        vm.stopPrank();
        vm.warp(block.timestamp + 1 hours);
        holder.arm(x, y);
        uint256 nftBefore = address(nft).balance;

        vm.prank(carol);
        nft.refund(x);

        vm.assertEq(holder.sameTokenError(), uint32(GenImNFT.RequestNotPending.selector), "same token again");
        vm.assertEq(holder.otherRefunded(), 2, "other own token");
        vm.assertEq(holder.payments(), 3, "two payments: x, then y nested");
        vm.assertEq(address(holder).balance, premiumWei + basicWei, "holder: two escrows, once each");
        vm.assertEq(nft.credit(address(holder)), 0, "paid, not credited");
        vm.assertEq(address(nft).balance, nftBefore - premiumWei - basicWei, "contract paid two escrows, once each");
        _assertStatus(x, GenImNFT.Status.Refunded, "x refunded");
        _assertStatus(y, GenImNFT.Status.Refunded, "y refunded");
        vm.assertEq(nft.balanceOf(address(holder)), 0, "both burned");
        _assertStatus(victim, GenImNFT.Status.Pending, "victim still pending");
        _assertBooks();
    }

    /// A re-entry script heavier than REFUND_GAS cannot run from a refund at all: the payment runs out of
    /// gas, the refund lands as the attacker's credit, and nothing of the script happened.
    function test_RefundReentryBeyondRefundGasIsCredited() public {
        uint256 x = _attackerMint(1);
        uint256 y = _attackerMint(0);
        vm.warp(block.timestamp + 1 hours);
        bytes[] memory calls = new bytes[](2);
        uint256[] memory values = new uint256[](2);
        calls[0] = abi.encodeCall(GenImNFT.refund, (x));
        calls[1] = abi.encodeCall(GenImNFT.refund, (y));
        attacker.arm(calls, values, false);
        uint256 attackerBefore = address(attacker).balance;

        attacker.exec(abi.encodeCall(GenImNFT.refund, (x)), 0);

        vm.assertEq(attacker.outcomes(), 0, "the script did not run");
        vm.assertEq(attacker.callbacks(), 0, "no payment arrived");
        vm.assertEq(nft.credit(address(attacker)), premiumWei, "x's escrow credited");
        vm.assertEq(address(attacker).balance, attackerBefore, "attacker unpaid so far");
        _assertStatus(x, GenImNFT.Status.Refunded, "x refunded");
        _assertStatus(y, GenImNFT.Status.Pending, "y untouched");
        _assertBooks();
    }

    /// Strict attacker: the inner RequestNotPending would escape receive(), and the script does not fit the
    /// REFUND_GAS the payment carries anyway, so the refund payment fails. The
    /// refund still lands: the token is refunded and burned, and its escrow becomes the attacker's credit,
    /// which a later withdraw pays exactly once.
    function test_RefundReentryRevertEscapingReceiveIsCredited() public {
        uint256 x = _attackerMint(1);
        vm.warp(block.timestamp + 1 hours);
        (bytes[] memory calls, uint256[] memory values) = _script(abi.encodeCall(GenImNFT.refund, (x)), 0);
        attacker.arm(calls, values, true);
        uint256 attackerBefore = address(attacker).balance;
        uint256 nftBefore = address(nft).balance;

        vm.expectEmit(true, true, true, true);
        emit GenImNFT.Refunded(x, address(attacker), GenImNFT.Asset.ETH, premiumWei, true);
        attacker.exec(abi.encodeCall(GenImNFT.refund, (x)), 0);

        _assertStatus(x, GenImNFT.Status.Refunded, "refunded");
        vm.assertEq(nft.balanceOf(address(attacker)), 0, "burned");
        vm.assertEq(nft.credit(address(attacker)), premiumWei, "escrow credited");
        vm.assertEq(address(attacker).balance, attackerBefore, "attacker unpaid so far");
        vm.assertEq(address(nft).balance, nftBefore, "contract still holds it, as credit");
        _assertBooks();

        // Disarmed (the script's run was rolled back with the failed payment: re-arm with nothing to do).
        attacker.arm(new bytes[](0), new uint256[](0), true);
        attacker.exec(abi.encodeCall(GenImNFT.withdraw, ()), 0);
        vm.assertEq(address(attacker).balance, attackerBefore + premiumWei, "paid once");
        vm.assertEq(address(nft).balance, nftBefore - premiumWei, "contract paid once");
        vm.assertEq(nft.credit(address(attacker)), 0, "credit cleared");
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.RequestNotPending.selector, x, GenImNFT.Status.Refunded));
        attacker.exec(abi.encodeCall(GenImNFT.refund, (x)), 0);
        _assertBooks();
    }

    /*//////////////////////////////////////////////////////////////
                  (c) RE-ENTERING WITHDRAW FROM THE WITHDRAWAL
    //////////////////////////////////////////////////////////////*/

    /// Makes the attacker an oracle with the credit of one ultraWei image (bob's token); returns that credit.
    function _attackerEarns() internal returns (uint256 earned) {
        vm.prank(owner);
        nft.setOracle(address(attacker), true);
        uint256 id = _mintEth(bob, 2);
        attacker.exec(abi.encodeCall(GenImNFT.setImage, (id, DIGEST)), 0);
        earned = ultraWei - ultraWei * FEE_BPS / 10_000;
        vm.assertEq(nft.credit(address(attacker)), earned, "attacker's credit");
    }

    /// An oracle re-enters withdraw from its payment: NothingToWithdraw, the credit was cleared before the
    /// payment. The outer withdraw succeeds and pays the credit once; the oracle flag survives.
    function test_WithdrawReentryCannotWithdrawTwice() public {
        uint256 earned = _attackerEarns();
        (bytes[] memory calls, uint256[] memory values) = _script(abi.encodeCall(GenImNFT.withdraw, ()), 0);
        attacker.arm(calls, values, false);
        uint256 attackerBefore = address(attacker).balance;
        uint256 nftBefore = address(nft).balance;
        uint256 fees = nft.credit(owner);

        attacker.exec(abi.encodeCall(GenImNFT.withdraw, ()), 0);

        _assertOutcome(
            0, false, abi.encodeWithSelector(GenImNFT.NothingToWithdraw.selector, address(attacker)), "second withdraw"
        );
        vm.assertEq(attacker.callbacks(), 1, "one payment");
        vm.assertEq(address(attacker).balance, attackerBefore + earned, "credit paid once");
        vm.assertEq(address(nft).balance, nftBefore - earned, "contract paid once");
        vm.assertEq(nft.credit(address(attacker)), 0, "credit cleared");
        vm.assertTrue(nft.isOracle(address(attacker)), "still an oracle");
        vm.assertEq(nft.credit(owner), fees, "fees untouched");
        vm.assertEq(address(nft).balance, ultraWei + fees, "victim's escrow and the fees remain");
        _assertBooks();
    }

    /// Strict attacker: the inner NothingToWithdraw escapes receive(); the withdrawal reverts as a whole with
    /// TransferFailed and the credit is intact. A plain withdraw afterwards pays it once.
    function test_RevertWhen_WithdrawReentryRevertEscapesReceive() public {
        uint256 earned = _attackerEarns();
        (bytes[] memory calls, uint256[] memory values) = _script(abi.encodeCall(GenImNFT.withdraw, ()), 0);
        attacker.arm(calls, values, true);
        uint256 attackerBefore = address(attacker).balance;
        uint256 nftBefore = address(nft).balance;

        vm.expectRevert(abi.encodeWithSelector(GenImNFT.TransferFailed.selector, address(attacker), earned));
        attacker.exec(abi.encodeCall(GenImNFT.withdraw, ()), 0);

        vm.assertEq(nft.credit(address(attacker)), earned, "credit intact");
        vm.assertEq(address(attacker).balance, attackerBefore, "attacker unpaid");
        vm.assertEq(address(nft).balance, nftBefore, "contract unchanged");
        _assertBooks();

        attacker.arm(new bytes[](0), new uint256[](0), true);
        attacker.exec(abi.encodeCall(GenImNFT.withdraw, ()), 0);
        vm.assertEq(address(attacker).balance, attackerBefore + earned, "paid once");
        vm.assertEq(nft.credit(address(attacker)), 0, "credit cleared");
        _assertBooks();
    }

    /// From inside its withdrawal the oracle tries to set the image of a token minted before it was
    /// authorised (refused: no consent), sets another image (legitimate: new credit) and withdraws again: it
    /// gets the old credit plus the new one, each once, and nothing of the escrow still pending.
    function test_WithdrawReentryEarnsOnlyNewCredit() public {
        uint256 earned = _attackerEarns();
        uint256 epoch = nft.oracleEpoch();
        vm.prank(bob);
        uint256 later = nft.mint{value: ultraWei}("a second harbour", 2, 3, epoch);
        uint256 firstServed = nft.servesFrom(address(attacker));
        bytes[] memory calls = new bytes[](4);
        uint256[] memory values = new uint256[](4);
        calls[0] = abi.encodeCall(GenImNFT.setImage, (victim, DIGEST));
        calls[1] = abi.encodeCall(GenImNFT.setImage, (later, DIGEST));
        calls[2] = abi.encodeCall(GenImNFT.withdraw, ());
        calls[3] = abi.encodeCall(GenImNFT.withdraw, ());
        attacker.arm(calls, values, false);
        uint256 attackerBefore = address(attacker).balance;
        uint256 nftBefore = address(nft).balance;
        uint256 fee = ultraWei * FEE_BPS / 10_000;

        attacker.exec(abi.encodeCall(GenImNFT.withdraw, ()), 0);

        _assertOutcome(
            0,
            false,
            abi.encodeWithSelector(GenImNFT.OracleAuthorisedAfterMint.selector, victim, address(attacker), firstServed),
            "no image for a token minted before the attacker was authorised"
        );
        _assertOutcome(1, true, "", "image for a token minted since");
        _assertOutcome(2, true, "", "withdraw the new credit");
        _assertOutcome(
            3, false, abi.encodeWithSelector(GenImNFT.NothingToWithdraw.selector, address(attacker)), "nothing left"
        );
        vm.assertEq(attacker.callbacks(), 2, "two payments");
        vm.assertEq(attacker.received(), earned + (ultraWei - fee), "old credit + new credit");
        vm.assertEq(address(attacker).balance, attackerBefore + earned + ultraWei - fee, "each credit once");
        vm.assertEq(address(nft).balance, nftBefore - earned - (ultraWei - fee), "contract paid each credit once");
        vm.assertEq(nft.credit(owner), 2 * fee, "both fees kept for the owner");
        vm.assertEq(address(nft).balance, 2 * fee + ultraWei, "the fees and the victim's escrow remain");
        _assertStatus(victim, GenImNFT.Status.Pending, "victim still pending");
        _assertBooks();
    }

    /// The attacker is owner and oracle: one withdrawal pays credit plus fees; re-entry finds nothing.
    function test_OwnerOracleWithdrawReentryPaysFeesOnce() public {
        uint256 earned = _attackerEarns();
        vm.prank(owner);
        nft.transferOwnership(address(attacker));
        attacker.exec(abi.encodeWithSignature("acceptOwnership()"), 0);
        vm.assertEq(nft.owner(), address(attacker), "attacker owns the contract");
        uint256 fees = ultraWei * FEE_BPS / 10_000;
        vm.assertEq(nft.credit(address(attacker)), earned + fees, "credit includes the fees");
        (bytes[] memory calls, uint256[] memory values) = _script(abi.encodeCall(GenImNFT.withdraw, ()), 0);
        attacker.arm(calls, values, false);
        uint256 attackerBefore = address(attacker).balance;

        attacker.exec(abi.encodeCall(GenImNFT.withdraw, ()), 0);

        _assertOutcome(
            0, false, abi.encodeWithSelector(GenImNFT.NothingToWithdraw.selector, address(attacker)), "second withdraw"
        );
        vm.assertEq(address(attacker).balance, attackerBefore + earned + fees, "credit and fees, once");
        vm.assertEq(address(nft).balance, ultraWei, "only the victim's escrow remains");
        vm.assertEq(nft.credit(address(attacker)), 0, "nothing owed");
        _assertBooks();
    }

    /*//////////////////////////////////////////////////////////////
                                GRIEFING
    //////////////////////////////////////////////////////////////*/

    /// Stranded escrow (audit, low). A holder whose receive() reverts cannot block its refund: a stranger's
    /// refund call lands at the deadline, the token is burned and the escrow becomes the holder's credit (the
    /// holder's own call would do the same). The oracle can no longer set it; others are unaffected.
    /// withdraw() cannot pay a contract that refuses ether, so the holder takes its credit out with
    /// withdrawTo(recipient), once. A USDC token held by such a contract is simply refunded in USDC.
    function test_RefusingHolderIsCreditedAndRecoversWithWithdrawTo() public {
        RefusingHolder refuser = new RefusingHolder();
        _creditors.push(address(refuser));
        vm.deal(address(refuser), 1 ether);
        bytes memory ret = refuser.exec(nft, abi.encodeCall(GenImNFT.mint, ("stubborn", 1, 0, 1)), premiumWei);
        uint256 id = abi.decode(ret, (uint256));
        uint256 usdcId = _mintUsdc(BOB_KEY, 0, carol);
        vm.prank(bob);
        nft.transferFrom(bob, address(refuser), usdcId);
        uint256 deadline = nft.request(id).deadline;
        vm.warp(deadline);

        vm.expectRevert(abi.encodeWithSelector(GenImNFT.DeadlinePassed.selector, id, deadline));
        vm.prank(oracle);
        nft.setImage(id, DIGEST);
        vm.startPrank(carol);
        nft.refund(id);
        nft.refund(usdcId);
        vm.stopPrank();
        _assertStatus(id, GenImNFT.Status.Refunded, "refunded");
        vm.assertEq(nft.credit(address(refuser)), premiumWei, "escrow credited to the holder");
        vm.assertEq(address(refuser).balance, 1 ether - premiumWei, "no ether pushed");
        vm.assertEq(address(nft).balance, ultraWei + premiumWei, "victim's escrow and the credit held");
        vm.assertEq(usdc.balanceOf(address(refuser)), BASIC_USD, "the USDC token refunded in USDC, not credited");
        vm.assertEq(nft.usdcCredit(address(refuser)), 0, "no USDC credit");
        _assertBooks();

        // A bystander's refund is not affected.
        uint256 aliceBefore = alice.balance;
        vm.prank(alice);
        nft.refund(victim);
        vm.assertEq(alice.balance, aliceBefore + ultraWei, "alice refunded");

        // The holder cannot take ether, so its withdraw reverts and the credit stays.
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.TransferFailed.selector, address(refuser), premiumWei));
        refuser.exec(nft, abi.encodeCall(GenImNFT.withdraw, ()), 0);
        vm.assertEq(nft.credit(address(refuser)), premiumWei, "credit kept");
        // Whoever controls the holder names a recipient; a stranger cannot take it.
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.NothingToWithdraw.selector, carol));
        vm.prank(carol);
        nft.withdrawTo(payable(carol));
        refuser.exec(nft, abi.encodeCall(GenImNFT.withdrawTo, (payable(bob))), 0);
        vm.assertEq(bob.balance, 100 ether + premiumWei, "recovered to the recipient");
        vm.assertEq(nft.credit(address(refuser)), 0, "credit cleared");
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.NothingToWithdraw.selector, address(refuser)));
        refuser.exec(nft, abi.encodeCall(GenImNFT.withdrawTo, (payable(bob))), 0);
        _assertBooks();
    }

    /// Gas the refund's caller spends, measured around the call (the 21,000 of a transaction not included).
    function _refundGas(uint256 id) internal returns (uint256 used) {
        vm.prank(carol);
        used = gasleft();
        nft.refund(id);
        used -= gasleft();
    }

    /// Refund gas (audit, info): before the fix, a holder whose receive() burns gas made a stranger's refund
    /// cost 2,978,369 gas. Now the ether goes with REFUND_GAS only; a holder that burns more is credited, and
    /// the caller pays at most REFUND_GAS above an ordinary refund plus the credit's storage write. A holder
    /// that needs less than REFUND_GAS is paid as before.
    function test_RefundGasIsBoundedForGasBurningHolder() public {
        GasBurner burner = new GasBurner();
        ModestReceiver modest = new ModestReceiver();
        uint256 burnt = _mintEth(alice, 1);
        uint256 paid = _mintEth(alice, 1);
        uint256 ordinary = _mintEth(alice, 1);
        vm.startPrank(alice);
        nft.transferFrom(alice, address(burner), burnt);
        nft.transferFrom(alice, address(modest), paid);
        vm.stopPrank();
        vm.warp(block.timestamp + 1 hours);

        uint256 ordinaryGas = _refundGas(ordinary);
        uint256 modestGas = _refundGas(paid);
        vm.expectEmit(true, true, true, true);
        emit GenImNFT.Refunded(burnt, address(burner), GenImNFT.Asset.ETH, premiumWei, true);
        uint256 burnerGas = _refundGas(burnt);
        emit log_named_uint("gas: refund to an EOA", ordinaryGas);
        emit log_named_uint("gas: refund to a receiver spending ~22k", modestGas);
        emit log_named_uint("gas: refund to a gas-burning holder (credited)", burnerGas);

        vm.assertEq(modest.payments(), 1, "a modest receiver is paid");
        vm.assertEq(address(modest).balance, premiumWei, "with the escrow");
        vm.assertEq(nft.credit(address(modest)), 0, "not credited");
        vm.assertEq(nft.credit(address(burner)), premiumWei, "the burner is credited");
        vm.assertEq(address(burner).balance, 0, "and not paid");
        uint256 refundGas = nft.REFUND_GAS();
        vm.assertLe(burnerGas, ordinaryGas + refundGas + 2300 + 22_100, "REFUND_GAS + stipend + credit write");
        vm.assertGt(burnerGas, refundGas, "the gas was forwarded, and burnt");
        // The burner recovers its credit to a recipient that accepts ether.
        burner.exec(nft, abi.encodeCall(GenImNFT.withdrawTo, (payable(carol))));
        vm.assertEq(carol.balance, premiumWei, "recovered");
        _creditors.push(address(burner));
        _assertBooks();
    }

    /*//////////////////////////////////////////////////////////////
                     ETHER SENT WITH ERC-721 CALLS
    //////////////////////////////////////////////////////////////*/

    /// Found while writing these tests: solady's approve, transferFrom and both safeTransferFrom are `payable`;
    /// ether sent with them would belong to no escrow and no credit and could never be paid out. GenImNFT
    /// overrides them to refuse it.
    function test_RevertWhen_EtherSentWithTransferOrApprove() public {
        uint256 before = address(nft).balance;
        vm.startPrank(alice);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.EtherNotAccepted.selector, 1));
        nft.approve{value: 1 wei}(bob, victim);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.EtherNotAccepted.selector, 2));
        nft.transferFrom{value: 2 wei}(alice, bob, victim);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.EtherNotAccepted.selector, 3));
        nft.safeTransferFrom{value: 3 wei}(alice, bob, victim);
        vm.expectRevert(abi.encodeWithSelector(GenImNFT.EtherNotAccepted.selector, 4));
        nft.safeTransferFrom{value: 4 wei}(alice, bob, victim, "");
        nft.transferFrom(alice, bob, victim);
        vm.stopPrank();
        vm.assertEq(nft.ownerOf(victim), bob, "a transfer without ether still works");
        vm.assertEq(address(nft).balance, before, "no ether taken");
        _assertBooks();
    }
}
