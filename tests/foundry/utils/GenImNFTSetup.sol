// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/shared/mocks/MockV3Aggregator.sol";
import {GenImNFT} from "../../../contracts/GenImNFT.sol";
import {Feeds} from "./Feeds.sol";
import {Test} from "./Test.sol";
import {IFiatToken, Usdc} from "./Usdc.sol";

/// @dev GenImNFT on its real neighbours, as every suite deploys it: Circle's FiatTokenV2_2 behind its proxy
/// (utils/Usdc.sol), Chainlink's MockV3Aggregator as ETH/USD at $3,000 and as the L2 sequencer uptime feed
/// (utils/Feeds.sol), the deploy defaults' dollar prices. Helpers mint on either rail the way a buyer does:
/// reading {GenImNFT.priceInWei} or {GenImNFT.price} and {GenImNFT.oracleEpoch} first.
abstract contract GenImNFTSetup is Test {
    uint256 internal constant DOLLAR = 1e6;
    uint256 internal constant BASIC_USD = 100_000; // $0.10
    uint256 internal constant PREMIUM_USD = 300_000; // $0.30
    uint256 internal constant ULTRA_USD = 800_000; // $0.80
    int256 internal constant ETH_USD = 3000 * Feeds.USD;
    uint16 internal constant FEE_BPS = 500;
    uint256 internal constant FOREVER = type(uint256).max;
    string internal constant PROMPT = "a lighthouse at dawn";

    GenImNFT internal nft;
    IFiatToken internal usdc;
    MockV3Aggregator internal ethUsd;
    MockV3Aggregator internal sequencer;
    // USDC's proxy admin (which may never call the token) and its owner, master minter and blacklister.
    address internal usdcAdmin = vm.addr(0xAD);
    address internal usdcOwner = vm.addr(0xC1C);
    uint256 private _nonceCount;

    /// @dev Deploys the feeds, USDC and the contract (warping to a realistic time, see Feeds.START).
    function _deploy(address owner_, address[] memory oracles) internal {
        ethUsd = Feeds.deployEthUsd(ETH_USD);
        sequencer = Feeds.deploySequencer();
        usdc = Usdc.deploy(usdcAdmin, usdcOwner);
        nft = _deployWith(owner_, oracles, address(usdc), address(ethUsd), address(sequencer));
        vm.label(address(nft), "GenImNFT");
        vm.label(address(usdc), "USDC");
    }

    function _deployWith(address owner_, address[] memory oracles, address usdc_, address feed, address uptime)
        internal
        returns (GenImNFT)
    {
        return new GenImNFT(owner_, [BASIC_USD, PREMIUM_USD, ULTRA_USD], FEE_BPS, oracles, usdc_, feed, uptime);
    }

    function _one(address account) internal pure returns (address[] memory list) {
        list = new address[](1);
        list[0] = account;
    }

    /*//////////////////////////////////////////////////////////////
                                 ETH RAIL
    //////////////////////////////////////////////////////////////*/

    /// @dev `usd` (6 decimals) in wei at an 8-decimal ETH/USD `answer`, rounded up to a whole gwei:
    /// usd / 1e6 dollars buy usd * 1e8 / (1e6 * answer) ether, that is usd * 1e11 / answer gwei.
    function _weiAt(uint256 usd, int256 answer) internal pure returns (uint256) {
        uint256 rate = uint256(answer);
        uint256 gweiAmount = usd * 1e11 / rate;
        if (gweiAmount * rate < usd * 1e11) ++gweiAmount; // a fraction of a gwei is charged as a whole one
        return gweiAmount * 1 gwei;
    }

    /// @dev `who` mints `tier` on the ETH rail, paying exactly {GenImNFT.priceInWei}.
    function _mintEth(address who, uint8 tier) internal returns (uint256) {
        uint256 price = nft.priceInWei(tier);
        uint256 epoch = nft.oracleEpoch();
        vm.deal(who, who.balance + price);
        vm.prank(who);
        return nft.mint{value: price}(PROMPT, tier, 0, epoch);
    }

    /// @dev Makes the feed's answer `answer` and lets the 60 s rate cache lapse, so the next mint reads it.
    function _movePrice(int256 answer) internal {
        vm.warp(block.timestamp + nft.RATE_CACHE_WINDOW());
        Feeds.setPrice(ethUsd, answer);
    }

    /*//////////////////////////////////////////////////////////////
                                USDC RAIL
    //////////////////////////////////////////////////////////////*/

    /// @dev A nonce never used before in these tests.
    function _nonce() internal returns (bytes32) {
        return keccak256(abi.encode("GenImNFT test nonce", ++_nonceCount));
    }

    /// @dev `key`'s TransferWithAuthorization to the contract for `value`, valid from 0 to forever, r||s||v.
    function _authorize(uint256 key, uint256 value, bytes32 nonce) internal view returns (bytes memory) {
        return Usdc.signTransferPacked(usdc, key, address(nft), value, 0, FOREVER, nonce);
    }

    /// @dev `vm.addr(key)` mints `tier` on the USDC rail, sent by `relayer`: funds it with the price, signs
    /// the authorization for exactly {GenImNFT.price} and sends it in the `v, r, s` form.
    function _mintUsdc(uint256 key, uint8 tier, address relayer) internal returns (uint256) {
        address from = vm.addr(key);
        uint256 value = nft.price(tier);
        Usdc.mint(usdc, from, value);
        bytes32 nonce = _nonce();
        (uint8 v, bytes32 r, bytes32 s) = Usdc.signTransfer(usdc, key, address(nft), value, 0, FOREVER, nonce);
        uint256 epoch = nft.oracleEpoch();
        vm.prank(relayer);
        return nft.mintWithAuthorization(PROMPT, tier, 0, epoch, from, 0, FOREVER, nonce, v, r, s);
    }

    /// @dev The USDC the contract holds beyond its books: what a mint whose authorization someone else
    /// executed first can draw on.
    function _unbookedUsdc() internal view returns (uint256) {
        return usdc.balanceOf(address(nft)) - nft.usdcLiabilities();
    }
}
