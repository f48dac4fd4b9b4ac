// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {VM} from "./Test.sol";

/// @dev Circle's FiatTokenV2_2 (USDC) as the tests call it, at the proxy's address. Signatures from its ABI.
interface IFiatToken {
    // ERC-20 and metadata
    function name() external view returns (string memory);
    function symbol() external view returns (string memory);
    function currency() external view returns (string memory);
    function decimals() external view returns (uint8);
    function version() external pure returns (string memory);
    function totalSupply() external view returns (uint256);
    function balanceOf(address account) external view returns (uint256);
    function allowance(address owner, address spender) external view returns (uint256);
    function transfer(address to, uint256 value) external returns (bool);
    function transferFrom(address from, address to, uint256 value) external returns (bool);
    function approve(address spender, uint256 value) external returns (bool);

    // Initialisation (Circle's order: V1, V2, V2_1, V2_2)
    function initialize(
        string calldata tokenName,
        string calldata tokenSymbol,
        string calldata tokenCurrency,
        uint8 tokenDecimals,
        address newMasterMinter,
        address newPauser,
        address newBlacklister,
        address newOwner
    ) external;
    function initializeV2(string calldata newName) external;
    function initializeV2_1(address lostAndFound) external;
    function initializeV2_2(address[] calldata accountsToBlacklist, string calldata newSymbol) external;

    // Roles: minting, blacklisting, pausing
    function owner() external view returns (address);
    function masterMinter() external view returns (address);
    function pauser() external view returns (address);
    function blacklister() external view returns (address);
    function configureMinter(address minter, uint256 minterAllowedAmount) external returns (bool);
    function removeMinter(address minter) external returns (bool);
    function isMinter(address account) external view returns (bool);
    function minterAllowance(address minter) external view returns (uint256);
    function mint(address to, uint256 amount) external returns (bool);
    function burn(uint256 amount) external;
    function blacklist(address account) external;
    function unBlacklist(address account) external;
    function isBlacklisted(address account) external view returns (bool);
    function pause() external;
    function unpause() external;
    function paused() external view returns (bool);

    // EIP-712 / EIP-3009
    function DOMAIN_SEPARATOR() external view returns (bytes32);
    function TRANSFER_WITH_AUTHORIZATION_TYPEHASH() external view returns (bytes32);
    function RECEIVE_WITH_AUTHORIZATION_TYPEHASH() external view returns (bytes32);
    function CANCEL_AUTHORIZATION_TYPEHASH() external view returns (bytes32);
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external;
    function receiveWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external;
    function cancelAuthorization(address authorizer, bytes32 nonce, uint8 v, bytes32 r, bytes32 s) external;
    function cancelAuthorization(address authorizer, bytes32 nonce, bytes calldata signature) external;
}

/// @dev Circle's real USDC in forge tests: deploys FiatTokenV2_2 behind FiatTokenProxy from the npm artifacts
/// (toolchain/vendor.sh) the way Circle does, mints, and signs EIP-3009 authorizations with `vm.sign`.
/// Signing makes no external call (only the cheatcode), so it may sit between `vm.prank` and the pranked call.
library Usdc {
    string internal constant ARTIFACTS = ".cache/vendor/stablecoin-evm/artifacts/hardhat/contracts/";
    /// @dev solc's library placeholder, as hardhat keeps it in `bytecode`:
    /// "__$" + first 17 bytes of keccak256("contracts/util/SignatureChecker.sol:SignatureChecker") + "$__".
    string internal constant SIGNATURE_CHECKER_PLACEHOLDER = "__$715109b5d747ea58b675c6ea3f0dba8c60$__";
    string internal constant NAME = "USD Coin";
    string internal constant VERSION = "2";
    bytes32 internal constant DOMAIN_TYPEHASH =
        keccak256("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)");
    bytes32 internal constant TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant RECEIVE_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "ReceiveWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );
    bytes32 internal constant CANCEL_AUTHORIZATION_TYPEHASH =
        keccak256("CancelAuthorization(address authorizer,bytes32 nonce)");

    /// @dev Deploys USDC as Circle's deploy script does: SignatureChecker, the implementation linked to it and
    /// locked with throwaway roles, FiatTokenProxy created by `admin` (which may then never call the token), and
    /// through the proxy "USD Coin"/"USDC"/"USD"/6 with `owner` as owner, master minter, pauser, blacklister,
    /// lost-and-found and the only minter (unlimited allowance). The calling contract must not be `admin`.
    function deploy(address admin, address owner) internal returns (IFiatToken token) {
        address checker =
            _create(VM.parseJsonBytes(_artifact("util/SignatureChecker.sol/SignatureChecker.json"), ".bytecode"));
        string memory code = VM.parseJsonString(_artifact("v2/FiatTokenV2_2.sol/FiatTokenV2_2.json"), ".bytecode");
        string memory checkerHex = VM.replace(VM.toLowercase(VM.toString(checker)), "0x", "");
        IFiatToken impl =
            IFiatToken(_create(VM.parseBytes(VM.replace(code, SIGNATURE_CHECKER_PLACEHOLDER, checkerHex))));
        address one = address(1);
        _initialize(impl, "", "", "", 0, one, one, "");
        bytes memory proxy = VM.parseJsonBytes(_artifact("v1/FiatTokenProxy.sol/FiatTokenProxy.json"), ".bytecode");
        VM.prank(admin);
        token = IFiatToken(_create(abi.encodePacked(proxy, abi.encode(impl))));
        _initialize(token, NAME, "USDC", "USD", 6, owner, owner, "USDC");
        VM.prank(owner);
        token.configureMinter(owner, type(uint256).max);
    }

    /// @dev Mints `amount` (6 decimals) to `to` as the token's master minter, which `deploy` made the minter.
    /// Pranks: do not call it while a `vm.startPrank` is active.
    function mint(IFiatToken token, address to, uint256 amount) internal {
        address minter = token.masterMinter();
        VM.prank(minter);
        token.mint(to, amount);
    }

    /// @dev The EIP-712 domain separator computed independently: name "USD Coin", version "2", chain id, proxy.
    function domainSeparator(IFiatToken token) internal view returns (bytes32) {
        return
            keccak256(
                abi.encode(DOMAIN_TYPEHASH, keccak256(bytes(NAME)), keccak256(bytes(VERSION)), block.chainid, token)
            );
    }

    /// @dev The digest signed for `transferWithAuthorization` (or, with the receive typehash, `receiveWithAuthorization`).
    function authorizationDigest(
        IFiatToken token,
        bytes32 typehash,
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal view returns (bytes32) {
        return typedDigest(token, keccak256(abi.encode(typehash, from, to, value, validAfter, validBefore, nonce)));
    }

    /// @dev The digest signed for `cancelAuthorization(authorizer, nonce, ...)`.
    function cancelDigest(IFiatToken token, address authorizer, bytes32 nonce) internal view returns (bytes32) {
        return typedDigest(token, keccak256(abi.encode(CANCEL_AUTHORIZATION_TYPEHASH, authorizer, nonce)));
    }

    /// @dev The EIP-712 digest of `structHash` in the token's domain.
    function typedDigest(IFiatToken token, bytes32 structHash) internal view returns (bytes32) {
        return keccak256(abi.encodePacked("\x19\x01", domainSeparator(token), structHash));
    }

    /// @dev TransferWithAuthorization from `vm.addr(privateKey)`, for the `v,r,s` overloads.
    function signTransfer(
        IFiatToken token,
        uint256 privateKey,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal view returns (uint8 v, bytes32 r, bytes32 s) {
        bytes32 structHash = keccak256(
            abi.encode(
                TRANSFER_WITH_AUTHORIZATION_TYPEHASH, VM.addr(privateKey), to, value, validAfter, validBefore, nonce
            )
        );
        return VM.sign(privateKey, typedDigest(token, structHash));
    }

    /// @dev TransferWithAuthorization from `vm.addr(privateKey)`, packed r||s||v for the `bytes signature` overloads.
    function signTransferPacked(
        IFiatToken token,
        uint256 privateKey,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce
    ) internal view returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = signTransfer(token, privateKey, to, value, validAfter, validBefore, nonce);
        return abi.encodePacked(r, s, v);
    }

    /// @dev CancelAuthorization of `nonce` by `vm.addr(privateKey)`, for the `v,r,s` overload.
    function signCancel(IFiatToken token, uint256 privateKey, bytes32 nonce)
        internal
        view
        returns (uint8 v, bytes32 r, bytes32 s)
    {
        return VM.sign(privateKey, cancelDigest(token, VM.addr(privateKey), nonce));
    }

    /// @dev CancelAuthorization of `nonce` by `vm.addr(privateKey)`, packed r||s||v.
    function signCancelPacked(IFiatToken token, uint256 privateKey, bytes32 nonce)
        internal
        view
        returns (bytes memory)
    {
        (uint8 v, bytes32 r, bytes32 s) = signCancel(token, privateKey, nonce);
        return abi.encodePacked(r, s, v);
    }

    /// @dev Any digest signed by `privateKey`, packed r||s||v (e.g. a ReceiveWithAuthorization digest).
    function signPacked(uint256 privateKey, bytes32 digest) internal pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = VM.sign(privateKey, digest);
        return abi.encodePacked(r, s, v);
    }

    function _initialize(
        IFiatToken token,
        string memory name,
        string memory symbol,
        string memory currency,
        uint8 decimals,
        address owner,
        address lostAndFound,
        string memory newSymbol
    ) private {
        token.initialize(name, symbol, currency, decimals, owner, owner, owner, owner);
        token.initializeV2(name);
        token.initializeV2_1(lostAndFound);
        token.initializeV2_2(new address[](0), newSymbol);
    }

    function _artifact(string memory path) private view returns (string memory) {
        return VM.readFile(string.concat(ARTIFACTS, path));
    }

    function _create(bytes memory code) private returns (address deployed) {
        assembly ("memory-safe") {
            deployed := create(0, add(code, 0x20), mload(code))
        }
        require(deployed != address(0), "Usdc: deployment failed");
    }
}
