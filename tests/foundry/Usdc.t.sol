// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Test} from "./utils/Test.sol";
import {IFiatToken, Usdc} from "./utils/Usdc.sol";

/// @dev The proxy's own functions (only its admin reaches them; anyone else falls through to the token).
interface IFiatTokenProxy {
    function implementation() external view returns (address);
    function admin() external view returns (address);
}

/// @dev utils/Usdc.sol against Circle's real FiatTokenV2_2: deployed Circle's way, our EIP-3009 signatures accepted
/// in both overloads, exactly once.
contract UsdcTest is Test {
    /// @dev Printed by `forge test -vv`. Gas of the call alone, without the transaction's 21,000 and calldata.
    event log_named_uint(string key, uint256 val);

    uint256 internal constant ALICE_KEY = 0xA11CE;
    uint256 internal constant DOLLAR = 1e6;
    address internal admin = vm.addr(1);
    address internal owner = vm.addr(2);
    address internal alice = vm.addr(ALICE_KEY);
    address internal bob = vm.addr(4);
    address internal relayer = vm.addr(5);
    IFiatToken internal usdc;

    function setUp() public {
        usdc = Usdc.deploy(admin, owner);
        Usdc.mint(usdc, alice, 100 * DOLLAR);
    }

    function test_DeployedAsCircleDoes() public {
        vm.assertEq(usdc.name(), "USD Coin", "name");
        vm.assertEq(usdc.symbol(), "USDC", "symbol");
        vm.assertEq(usdc.currency(), "USD", "currency");
        vm.assertEq(usdc.decimals(), 6, "decimals");
        vm.assertEq(usdc.version(), "2", "version");
        vm.assertEq(usdc.owner(), owner, "owner");
        vm.assertEq(usdc.masterMinter(), owner, "master minter");
        vm.assertTrue(usdc.isMinter(owner), "minter");
        vm.assertEq(usdc.balanceOf(alice), 100 * DOLLAR, "minted");
        vm.assertEq(usdc.totalSupply(), 100 * DOLLAR, "supply");
        vm.assertEq(Usdc.domainSeparator(usdc), usdc.DOMAIN_SEPARATOR(), "domain separator");
        vm.assertEq(Usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH, usdc.TRANSFER_WITH_AUTHORIZATION_TYPEHASH(), "transfer");
        vm.assertEq(Usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH, usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH(), "receive");
        vm.assertEq(Usdc.CANCEL_AUTHORIZATION_TYPEHASH, usdc.CANCEL_AUTHORIZATION_TYPEHASH(), "cancel");

        vm.prank(admin);
        IFiatToken impl = IFiatToken(IFiatTokenProxy(address(usdc)).implementation());
        vm.expectRevert(bytes("FiatToken: contract is already initialized"));
        impl.initialize("x", "x", "x", 6, alice, alice, alice, alice);
        vm.expectRevert(bytes("Cannot call fallback function from the proxy admin"));
        vm.prank(admin);
        usdc.balanceOf(alice);
    }

    function test_TransferWithAuthorization_VRS() public {
        bytes32 nonce = keccak256("vrs");
        (uint8 v, bytes32 r, bytes32 s) = Usdc.signTransfer(usdc, ALICE_KEY, bob, DOLLAR, 0, type(uint256).max, nonce);
        vm.prank(relayer);
        uint256 gas = gasleft();
        usdc.transferWithAuthorization(alice, bob, DOLLAR, 0, type(uint256).max, nonce, v, r, s);
        emit log_named_uint("gas: transferWithAuthorization (v,r,s), new holder", gas - gasleft());
        vm.assertEq(usdc.balanceOf(bob), DOLLAR, "paid");
        vm.assertTrue(usdc.authorizationState(alice, nonce), "nonce used");

        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        usdc.transferWithAuthorization(alice, bob, DOLLAR, 0, type(uint256).max, nonce, v, r, s);
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        usdc.transferWithAuthorization(alice, bob, DOLLAR, 0, type(uint256).max, nonce, abi.encodePacked(r, s, v));
    }

    function test_TransferWithAuthorization_Bytes() public {
        bytes32 nonce = keccak256("bytes");
        bytes memory sig = Usdc.signTransferPacked(usdc, ALICE_KEY, bob, DOLLAR, 0, type(uint256).max, nonce);
        vm.assertEq(sig.length, 65, "r||s||v");
        vm.prank(relayer);
        uint256 gas = gasleft();
        usdc.transferWithAuthorization(alice, bob, DOLLAR, 0, type(uint256).max, nonce, sig);
        emit log_named_uint("gas: transferWithAuthorization (bytes), new holder", gas - gasleft());
        vm.assertEq(usdc.balanceOf(bob), DOLLAR, "paid");
        vm.assertEq(usdc.balanceOf(alice), 99 * DOLLAR, "debited");

        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        usdc.transferWithAuthorization(alice, bob, DOLLAR, 0, type(uint256).max, nonce, sig);
    }

    function test_RevertWhen_SignatureDoesNotMatch() public {
        bytes32 nonce = keccak256("tampered");
        bytes memory sig = Usdc.signTransferPacked(usdc, ALICE_KEY, bob, DOLLAR, 0, type(uint256).max, nonce);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        usdc.transferWithAuthorization(alice, bob, DOLLAR + 1, 0, type(uint256).max, nonce, sig);
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        usdc.transferWithAuthorization(alice, relayer, DOLLAR, 0, type(uint256).max, nonce, sig);
        // The other EIP-3009 type: a ReceiveWithAuthorization signature is no TransferWithAuthorization.
        bytes32 receiveDigest = Usdc.authorizationDigest(
            usdc, Usdc.RECEIVE_WITH_AUTHORIZATION_TYPEHASH, alice, bob, DOLLAR, 0, type(uint256).max, nonce
        );
        vm.expectRevert(bytes("FiatTokenV2: invalid signature"));
        usdc.transferWithAuthorization(
            alice, bob, DOLLAR, 0, type(uint256).max, nonce, Usdc.signPacked(ALICE_KEY, receiveDigest)
        );
        vm.prank(bob);
        usdc.receiveWithAuthorization(
            alice, bob, DOLLAR, 0, type(uint256).max, nonce, Usdc.signPacked(ALICE_KEY, receiveDigest)
        );
        vm.assertEq(usdc.balanceOf(bob), DOLLAR, "received");
    }

    function test_RevertWhen_OutsideValidityWindow() public {
        vm.warp(1_000_000);
        bytes32 nonce = keccak256("window");
        bytes memory late = Usdc.signTransferPacked(usdc, ALICE_KEY, bob, DOLLAR, block.timestamp, 2e6, nonce);
        vm.expectRevert(bytes("FiatTokenV2: authorization is not yet valid"));
        usdc.transferWithAuthorization(alice, bob, DOLLAR, block.timestamp, 2e6, nonce, late);
        bytes memory expired = Usdc.signTransferPacked(usdc, ALICE_KEY, bob, DOLLAR, 0, block.timestamp, nonce);
        vm.expectRevert(bytes("FiatTokenV2: authorization is expired"));
        usdc.transferWithAuthorization(alice, bob, DOLLAR, 0, block.timestamp, nonce, expired);
    }

    function test_CancelAuthorization_BurnsNonce() public {
        bytes32 nonce = keccak256("cancel");
        bytes memory sig = Usdc.signTransferPacked(usdc, ALICE_KEY, bob, DOLLAR, 0, type(uint256).max, nonce);
        (uint8 v, bytes32 r, bytes32 s) = Usdc.signCancel(usdc, ALICE_KEY, nonce);
        vm.prank(relayer);
        usdc.cancelAuthorization(alice, nonce, v, r, s);
        vm.assertTrue(usdc.authorizationState(alice, nonce), "nonce burnt");
        vm.expectRevert(bytes("FiatTokenV2: authorization is used or canceled"));
        usdc.transferWithAuthorization(alice, bob, DOLLAR, 0, type(uint256).max, nonce, sig);

        bytes32 other = keccak256("cancel packed");
        usdc.cancelAuthorization(alice, other, Usdc.signCancelPacked(usdc, ALICE_KEY, other));
        vm.assertTrue(usdc.authorizationState(alice, other), "packed cancel");
    }

    function test_RolesStillWork() public {
        vm.prank(owner);
        usdc.blacklist(bob);
        bytes32 nonce = keccak256("blacklisted");
        bytes memory sig = Usdc.signTransferPacked(usdc, ALICE_KEY, bob, DOLLAR, 0, type(uint256).max, nonce);
        vm.expectRevert(bytes("Blacklistable: account is blacklisted"));
        usdc.transferWithAuthorization(alice, bob, DOLLAR, 0, type(uint256).max, nonce, sig);
        vm.prank(owner);
        usdc.pause();
        vm.expectRevert(bytes("Pausable: paused"));
        vm.prank(owner);
        usdc.mint(alice, DOLLAR);
        vm.prank(owner);
        usdc.unpause();
        Usdc.mint(usdc, alice, DOLLAR);
        vm.assertEq(usdc.balanceOf(alice), 101 * DOLLAR, "minted after unpause");
    }
}
