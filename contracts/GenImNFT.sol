// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {AggregatorV3Interface} from "@chainlink/contracts/src/v0.8/shared/interfaces/AggregatorV3Interface.sol";
import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ERC721} from "solady/tokens/ERC721.sol";
import {ERC2981} from "solady/tokens/ERC2981.sol";
import {SignatureCheckerLib} from "solady/utils/SignatureCheckerLib.sol";

/// @notice The parts of USDC (Circle's FiatTokenV2_2) that GenImNFT calls: EIP-3009 and ERC-20 transfer.
interface IUSDC {
    function transferWithAuthorization(
        address from,
        address to,
        uint256 value,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes memory signature
    ) external;
    function authorizationState(address authorizer, bytes32 nonce) external view returns (bool);
    // forge-lint: disable-next-line(mixed-case-function)
    function DOMAIN_SEPARATOR() external view returns (bytes32);
    function transfer(address to, uint256 value) external returns (bool);
    function balanceOf(address account) external view returns (uint256);
}

/// @title GenImNFT: pay-per-image AI generation with per-token escrow, priced in US dollars
/// @notice A buyer mints a token and pays its tier's price in the same transaction, in ETH at Chainlink's
/// ETH/USD rate or in USDC by a signed EIP-3009 authorization; the payment is held in that token's escrow, in
/// the asset it came in. An authorised oracle generates the image for the prompt bound in the mint event, pins
/// the image and its ERC-721 metadata to IPFS, and calls {setImage} once; only then is the oracle credited,
/// from that token's own escrow, less the protocol fee. If no image arrives before the token's deadline,
/// {refund} pays the escrow back to the holder, in the same asset.
///
/// The contract is not upgradeable: buyers must be able to trust the code they paid into.
///
/// Invariants (each one is tested by name in tests/foundry/GenImNFT.invariants.t.sol and in tests/):
/// - `EscrowIsSolvent`: per asset, the contract holds at least the sum of pending escrows + credits + protocol
///   fees in that asset: address(this).balance for ETH, USDC.balanceOf(this) >= {usdcLiabilities} for USDC.
///   The two sides are equal unless ether is forced in, USDC is sent straight to the contract, or a refunded
///   token's holder is the contract itself (its USDC refund stays here, off the books).
/// - `NoTokenWithoutPayment`: every token is minted in the transaction that brings its payment: the ETH it
///   charged, or exactly its price in USDC, pulled from the buyer by their authorization (or, when someone
///   else executed that very authorization first, USDC that arrived and that no one else's books hold).
/// - `OneImagePerToken`: a token's metadata digest is written at most once and never changes.
/// - `EscrowPaidOutOnce`: every escrow leaves the contract's books exactly once, either as oracle credit plus
///   fee (fulfilled) or as a refund to the holder (refunded), in the asset it was paid in; never both, never
///   twice.
/// - `OwnerCannotTakeEscrow`: the owner can withdraw only protocol fees and its own credit, even after it
///   authorises itself or anyone else as an oracle (see `ConsentAtMint`).
/// - `ConsentAtMint`: every mint names the {oracleEpoch} its buyer saw, and reverts if the oracle set grew
///   since; a token is settled only by an oracle that was authorised at that epoch and has stayed authorised
///   since. Authorising an account (the owner included) bumps the epoch and never reaches tokens minted
///   before; revoking takes effect at once, and re-authorising starts afresh from the next token.
/// - `RefundsAlwaysLand`: once a pending request's deadline has passed, anyone can refund it and the call
///   succeeds; the escrow goes to the holder, or to the holder's withdrawable credit if the holder refuses it
///   (or burns more than {REFUND_GAS} receiving ether). Credit can be withdrawn to any recipient.
/// - `RequestTermsFixedAtMint`: a request's tier, aspect, asset, escrow and deadline never change after mint;
///   later price, fee or timeout changes affect only later mints (the fee applies when the image is set).
/// - `FulfilledOnlyBeforeDeadline`: an image is set only by an authorised oracle, strictly before the
///   deadline; a refund happens only at or after the deadline, and only while no image is set.
contract GenImNFT is ERC721, ERC2981, Ownable2Step {
    /*//////////////////////////////////////////////////////////////
                                CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Longest prompt accepted, in bytes of UTF-8.
    uint256 public constant MAX_PROMPT_BYTES = 1000;

    /// @notice Number of tiers: 0 basic, 1 premium, 2 ultra.
    uint8 public constant TIER_COUNT = 3;

    /// @notice Number of aspect ratios: 0 is 1:1, 1 is 16:9, 2 is 9:16, 3 is 4:3.
    uint8 public constant ASPECT_COUNT = 4;

    /// @notice Highest tier price, in US dollars with 6 decimals ($4,294.967295): prices are stored in 32 bits.
    uint256 public constant MAX_PRICE = type(uint32).max;

    /// @notice Highest protocol fee, in basis points of each escrow (20%).
    uint16 public constant MAX_FEE_BPS = 2000;

    /// @notice Bounds of the time an oracle has to deliver an image.
    uint32 public constant MIN_TIMEOUT = 5 minutes;
    uint32 public constant MAX_TIMEOUT = 30 days;

    /// @notice Bounds of the age of an ETH/USD answer that a mint accepts (see {setMaxPriceAge}).
    uint32 public constant MIN_PRICE_AGE = 1 minutes;
    uint32 public constant MAX_PRICE_AGE = 1 days;

    /// @notice After the L2 sequencer comes back up, ETH mints wait this long (Chainlink's L2 guidance), so
    /// that the feed has caught up with the market before anyone pays at its rate.
    uint256 public constant SEQUENCER_GRACE_PERIOD = 1 hours;

    /// @notice An ETH/USD rate that passed the feed checks is reused by ETH mints for this many seconds after
    /// they read it (as long as the answer stays within {maxPriceAge}), sparing each mint two feed reads.
    uint256 public constant RATE_CACHE_WINDOW = 1 minutes;

    /// @notice Gas a refund forwards with the ether it sends to the holder; a holder that needs more (or refuses
    /// ether) is credited instead, so a refund costs its caller a bounded amount.
    uint256 public constant REFUND_GAS = 50_000;

    uint32 private constant _DEFAULT_TIMEOUT = 1 hours;
    uint32 private constant _DEFAULT_PRICE_AGE = 1 hours;
    uint256 private constant _BPS = 10_000;

    // EIP-3009's typehash, as USDC signs and checks it.
    bytes32 private constant _TRANSFER_WITH_AUTHORIZATION_TYPEHASH = keccak256(
        "TransferWithAuthorization(address from,address to,uint256 value,uint256 validAfter,uint256 validBefore,bytes32 nonce)"
    );

    // `_config` bit layout (one slot, read once per mint, written once per mint for the token id):
    // [0..39]    next token id
    // [40..47]   minting paused (0 or 1)
    // [48..79]   timeout in seconds
    // [80..95]   protocol fee in basis points
    // [96..127]  basic price in US dollars, 6 decimals
    // [128..159] premium price
    // [160..191] ultra price
    // [192..231] oracle epoch: how many times an oracle was authorised
    // [232..255] greatest accepted age of the ETH/USD answer, in seconds
    uint256 private constant _PAUSED_SHIFT = 40;
    uint256 private constant _PAUSED_FLAG = uint256(1) << _PAUSED_SHIFT;
    uint256 private constant _TIMEOUT_SHIFT = 48;
    uint256 private constant _FEE_SHIFT = 80;
    uint256 private constant _PRICES_SHIFT = 96;
    uint256 private constant _PRICE_BITS = 32;
    uint256 private constant _EPOCH_SHIFT = 192;
    uint256 private constant _AGE_SHIFT = 232;
    uint256 private constant _MASK16 = 0xffff;
    uint256 private constant _MASK32 = 0xffffffff;
    uint256 private constant _MASK40 = 0xffffffffff;
    uint256 private constant _MASK48 = 0xffffffffffff;
    uint256 private constant _MASK128 = type(uint128).max;

    // Request bit layout, kept in the 96 bits of extra data of the token's ownership slot, so a mint
    // writes the owner and its request with one SSTORE:
    // [0..1]   stored status: Pending, or Refunded. A Pending request whose digest is set reads as
    //          Fulfilled: {setImage} writes only the digest slot, not the ownership slot again.
    // [2..3]   tier
    // [4..5]   aspect ratio
    // [6..45]  deadline (unix seconds, modulo 2**40)
    // [46..93] escrow: gwei for ETH, USDC units (6 decimals) for USDC
    // [94]     asset: 0 ETH, 1 USDC
    // [95]     unused
    uint256 private constant _TIER_SHIFT = 2;
    uint256 private constant _ASPECT_SHIFT = 4;
    uint256 private constant _DEADLINE_SHIFT = 6;
    uint256 private constant _ESCROW_SHIFT = 46;
    uint256 private constant _ASSET_SHIFT = 94;
    uint256 private constant _STATUS_MASK = 3;

    // `_accounts` bit layout (one slot per account, read once by {setImage}):
    // [0]        authorised oracle
    // [1..40]    first token id the oracle may settle: the next id when it was (last) authorised
    // [41..168]  ETH credit in wei
    // [169..255] USDC credit in USDC units
    uint256 private constant _SERVES_FROM_SHIFT = 1;
    uint256 private constant _CREDIT_SHIFT = 41;
    uint256 private constant _USDC_CREDIT_SHIFT = 169;
    uint256 private constant _ORACLE_BITS = (uint256(1) << _CREDIT_SHIFT) - 1;

    // `_feeAccount` bit layout: [0] always 1, [1..128] ETH fees in wei, [129..255] USDC fees.
    uint256 private constant _USDC_FEE_SHIFT = 129;

    // ERC-4906 interface id.
    bytes4 private constant _INTERFACE_ID_ERC4906 = 0x49064906;

    // CIDv1 prefix: version 1, codec raw (0x55), multihash sha2-256 (0x12) of 32 bytes (0x20).
    bytes4 private constant _CID_PREFIX = 0x01551220;
    bytes32 private constant _BASE32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

    /*//////////////////////////////////////////////////////////////
                               IMMUTABLES
    //////////////////////////////////////////////////////////////*/

    /// @notice The USDC token of the USDC rail (native USDC on OP Mainnet); zero if this deployment has none.
    IUSDC public immutable usdc;

    /// @notice Chainlink's ETH/USD price feed the ETH rail converts at.
    AggregatorV3Interface public immutable ethUsdFeed;

    /// @notice Chainlink's L2 sequencer uptime feed; zero on a chain that has none (no sequencer check).
    AggregatorV3Interface public immutable sequencerUptimeFeed;

    // 10 ** (feed decimals + 3): gwei = ceil(usd6 * scale / answer).
    uint256 private immutable _FEED_SCALE;

    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    /// @notice Life of a request. `None`: no such token was ever minted.
    enum Status {
        None,
        Pending,
        Fulfilled,
        Refunded
    }

    /// @notice What a token's escrow is held in.
    enum Asset {
        ETH,
        USDC
    }

    /// @notice A token's request as {request} reports it.
    struct Request {
        Status status;
        uint8 tier;
        uint8 aspect;
        Asset asset;
        uint40 deadline;
        uint256 escrow;
        bytes32 metadataDigest;
    }

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @dev The prompt is empty.
    error EmptyPrompt();
    /// @dev The prompt is longer than {MAX_PROMPT_BYTES}.
    error PromptTooLong(uint256 length, uint256 maxLength);
    /// @dev Minting is paused by the owner.
    error MintingIsPaused();
    /// @dev There is no tier with this number.
    error UnknownTier(uint8 tier);
    /// @dev There is no aspect ratio with this number.
    error UnknownAspect(uint8 aspect);
    /// @dev The tier's price is 0: it is not on sale.
    error TierDisabled(uint8 tier);
    /// @dev `msg.value` is below the tier's price in wei at the current rate.
    error InsufficientPayment(uint8 tier, uint256 price, uint256 paid);
    /// @dev The oracle set changed since the buyer read `expected`: the mint would not bind what they saw.
    error OracleSetChanged(uint256 expected, uint256 current);
    /// @dev The L2 sequencer is down (Chainlink's uptime feed): the ETH/USD rate may be stale.
    error SequencerDown(uint256 since);
    /// @dev The L2 sequencer came back less than {SEQUENCER_GRACE_PERIOD} ago; ETH mints resume at `resumesAt`.
    error SequencerGracePeriod(uint256 resumesAt);
    /// @dev The ETH/USD answer is older than {maxPriceAge}.
    error StalePrice(uint256 updatedAt, uint256 maxAge);
    /// @dev The ETH/USD answer is zero or negative.
    error InvalidPrice(int256 answer);
    /// @dev At this rate the price in gwei does not fit the escrow's 48 bits.
    error PriceOutOfRange(uint256 priceGwei);
    /// @dev This deployment has no USDC rail.
    error UsdcRailDisabled();
    /// @dev The authorization's nonce was used in USDC, but the signature is not `from`'s for paying this
    /// contract this tier's price (another recipient or value, or a bad signature), or it minted a token here
    /// already. (A cancelled authorization with a good signature gets {PaymentNotReceived} instead, unless the
    /// contract holds USDC that no one's books hold: see the README's trust section on the USDC rail.)
    error AuthorizationNotUsable(address from, bytes32 nonce);
    /// @dev USDC arrived through this authorization, but the contract holds less USDC than its books need:
    /// the payment was not this contract's to count (for example, a cancelled authorization).
    error PaymentNotReceived(address from, bytes32 nonce, uint256 balance, uint256 liabilities);
    /// @dev The caller is not an authorised oracle.
    error NotOracle(address account);
    /// @dev The oracle was authorised after `tokenId` was minted (first token it may settle: `servesFrom`).
    error OracleAuthorisedAfterMint(uint256 tokenId, address oracle, uint256 servesFrom);
    /// @dev The request is not pending (never minted, or refunded).
    error RequestNotPending(uint256 tokenId, Status status);
    /// @dev The token's image was set already, to `metadataDigest`.
    error ImageAlreadySet(uint256 tokenId, bytes32 metadataDigest);
    /// @dev The request's deadline has passed: only a refund is possible now.
    error DeadlinePassed(uint256 tokenId, uint256 deadline);
    /// @dev The request's deadline has not come yet: the oracle may still deliver.
    error DeadlineNotReached(uint256 tokenId, uint256 deadline);
    /// @dev A zero digest cannot be the sha256 of any metadata.
    error InvalidDigest(uint256 tokenId);
    /// @dev `tokenIds` and `metadataDigests` differ in length, or are empty.
    error InvalidBatch(uint256 tokenIds, uint256 metadataDigests);
    /// @dev The account has no credit to withdraw.
    error NothingToWithdraw(address account);
    /// @dev Sending ether failed.
    error TransferFailed(address to, uint256 amount);
    /// @dev Sending USDC failed (for example, the recipient is blacklisted).
    error UsdcTransferFailed(address to, uint256 amount);
    /// @dev The price exceeds {MAX_PRICE}.
    error UnrepresentablePrice(uint256 price, uint256 maxPrice);
    /// @dev The fee exceeds {MAX_FEE_BPS}.
    error FeeTooHigh(uint256 feeBps, uint256 maxFeeBps);
    /// @dev The timeout is outside [{MIN_TIMEOUT}, {MAX_TIMEOUT}].
    error TimeoutOutOfRange(uint256 timeout, uint256 minTimeout, uint256 maxTimeout);
    /// @dev The greatest price age is outside [{MIN_PRICE_AGE}, {MAX_PRICE_AGE}].
    error PriceAgeOutOfRange(uint256 maxAge, uint256 minAge, uint256 maxAllowed);
    /// @dev The zero address cannot be an oracle, a price feed or a withdrawal's recipient.
    error ZeroAddress();
    /// @dev Renouncing would strand the protocol fees and freeze the oracle set.
    error RenounceDisabled();
    /// @dev Ether sent with a call that takes none (Solady makes the ERC-721 calls payable).
    error EtherNotAccepted(uint256 value);

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice A token was minted and its image requested; prompt and aspect ratio are bound here, on-chain.
    /// `escrow` is in wei for ETH, in USDC units for USDC.
    event ImageRequested(
        uint256 indexed tokenId,
        address indexed requester,
        uint8 indexed tier,
        uint8 aspect,
        Asset asset,
        uint256 escrow,
        uint40 deadline,
        string prompt
    );
    /// @notice An oracle set the token's image; `payment` was credited to it and `fee` to the protocol, in
    /// `asset`.
    event ImageSet(
        uint256 indexed tokenId,
        address indexed oracle,
        bytes32 metadataDigest,
        Asset asset,
        uint256 payment,
        uint256 fee
    );
    /// @notice The escrow went back to the holder after the deadline; the token was burned. `credited` is
    /// true when the holder refused the payment and the amount was added to its withdrawable credit instead.
    event Refunded(uint256 indexed tokenId, address indexed holder, Asset asset, uint256 amount, bool credited);
    /// @notice `account` withdrew its credit to `recipient`.
    event Withdrawn(address indexed account, address indexed recipient, uint256 ethAmount, uint256 usdcAmount);
    /// @notice The price of `tier` was changed, in US dollars with 6 decimals; 0 means not on sale.
    event PriceUpdated(uint8 indexed tier, uint256 usdPrice);
    /// @notice `oracle` was authorised (for tokens from `servesFrom` on) or revoked (`servesFrom` 0); mints
    /// must now name `oracleEpoch`.
    event OracleUpdated(address indexed oracle, bool authorised, uint256 servesFrom, uint256 oracleEpoch);
    /// @notice The protocol fee was changed.
    event FeeUpdated(uint256 feeBps);
    /// @notice The timeout for later mints was changed.
    event TimeoutUpdated(uint256 timeout);
    /// @notice The greatest accepted age of the ETH/USD answer was changed.
    event MaxPriceAgeUpdated(uint256 maxPriceAge);
    /// @notice The URI shown for tokens whose image is not set yet was changed.
    event PlaceholderURIUpdated(string uri);
    /// @notice ERC-7572: the contract-level metadata changed.
    event ContractURIUpdated();
    /// @notice The ERC-2981 default royalty was changed.
    event DefaultRoyaltyUpdated(address indexed receiver, uint96 royaltyBps);
    /// @notice Minting was paused (`paused` true) or resumed.
    event MintingPaused(bool paused);
    /// @notice ERC-4906: the metadata of `_tokenId` changed.
    event MetadataUpdate(uint256 _tokenId);
    /// @notice ERC-4906: the metadata of a range of tokens changed.
    event BatchMetadataUpdate(uint256 _fromTokenId, uint256 _toTokenId);

    /*//////////////////////////////////////////////////////////////
                                 STORAGE
    //////////////////////////////////////////////////////////////*/

    // See the bit layout above.
    uint256 private _config;

    // See the `_feeAccount` layout above. The set bit keeps the slot from ever returning to zero, which
    // would make the next image cost 17,100 gas more.
    uint256 private _feeAccount = 1;

    // USDC the books hold: pending USDC escrows + USDC credits + USDC fees. The contract's USDC balance is
    // at least this; only the excess can back a mint whose authorization someone else executed first.
    uint256 private _usdcLiabilities;

    // The last ETH/USD rate that passed the checks: [0..39] when it was read, [40..79] the answer's updatedAt,
    // [80..255] the answer. Starts non-zero so the first refresh costs no more than later ones.
    uint256 private _rateCache = 1 << 80;

    // See the `_accounts` bit layout above. One slot, so {setImage} checks the caller's consent and credits
    // it with one read and one write. Holders who refused a refund have credit here too.
    mapping(address account => uint256) private _accounts;

    // sha256 of each token's metadata JSON; zero until the image is set.
    mapping(uint256 tokenId => bytes32) private _metadataDigests;

    // USDC authorizations (keccak256(from, nonce)) that minted through {mintWithAuthorization} after someone
    // else had executed them in USDC: each can mint once.
    mapping(bytes32 authorization => bool) private _claimedAuthorizations;

    string private _placeholderURI;
    string private _contractURI;

    /*//////////////////////////////////////////////////////////////
                               CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param initialOwner Receives ownership (and the protocol fees).
    /// @param usdPrices Price of each tier in US dollars with 6 decimals (0 disables it), at most {MAX_PRICE}.
    /// @param initialFeeBps Protocol fee in basis points, at most {MAX_FEE_BPS}.
    /// @param oracles Accounts authorised to set images from the start.
    /// @param usdc_ The USDC token of the USDC rail; zero for none.
    /// @param ethUsdFeed_ Chainlink's ETH/USD feed; not zero.
    /// @param sequencerUptimeFeed_ Chainlink's L2 sequencer uptime feed; zero on a chain without one.
    constructor(
        address initialOwner,
        uint256[3] memory usdPrices,
        uint16 initialFeeBps,
        address[] memory oracles,
        address usdc_,
        address ethUsdFeed_,
        address sequencerUptimeFeed_
    ) Ownable(initialOwner) {
        if (ethUsdFeed_ == address(0)) revert ZeroAddress();
        usdc = IUSDC(usdc_);
        ethUsdFeed = AggregatorV3Interface(ethUsdFeed_);
        sequencerUptimeFeed = AggregatorV3Interface(sequencerUptimeFeed_);
        _FEED_SCALE = 10 ** (uint256(AggregatorV3Interface(ethUsdFeed_).decimals()) + 3);
        _config = 1 | (uint256(_DEFAULT_TIMEOUT) << _TIMEOUT_SHIFT) | (uint256(_DEFAULT_PRICE_AGE) << _AGE_SHIFT);
        emit TimeoutUpdated(_DEFAULT_TIMEOUT);
        emit MaxPriceAgeUpdated(_DEFAULT_PRICE_AGE);
        for (uint8 tier; tier < TIER_COUNT; ++tier) {
            _setPrice(tier, usdPrices[tier]);
        }
        _setFee(initialFeeBps);
        for (uint256 i; i < oracles.length; ++i) {
            _setOracle(oracles[i], true);
        }
    }

    /*//////////////////////////////////////////////////////////////
                              BUYER ACTIONS
    //////////////////////////////////////////////////////////////*/

    /// @notice Mints a token to the caller and requests an image for `prompt` at `tier` in `aspect`, paid in
    /// ETH: the tier's US dollar price at Chainlink's ETH/USD rate now, rounded up to a whole gwei, is held in
    /// the token's escrow; any excess of `msg.value` is returned at once, so `msg.value` is the buyer's maximum.
    /// Only oracles authorised at `oracleEpoch` (and still authorised) can ever settle this token.
    /// Requirements:
    /// - `prompt` is 1 to {MAX_PROMPT_BYTES} bytes; `aspect` < {ASPECT_COUNT}.
    /// - minting is not paused; `tier` exists and is on sale; `oracleEpoch` is {oracleEpoch}.
    /// - the L2 sequencer is up, and has been for {SEQUENCER_GRACE_PERIOD}; the ETH/USD answer is positive and
    ///   at most {maxPriceAge} old.
    /// - `msg.value` >= {priceInWei}(`tier`); if there is excess, the caller accepts ether.
    /// @param prompt The text to generate the image from; it is emitted in {ImageRequested}.
    /// @param tier 0 basic, 1 premium, 2 ultra.
    /// @param aspect The image's shape: 0 is 1:1, 1 is 16:9, 2 is 9:16, 3 is 4:3.
    /// @param expectedEpoch The {oracleEpoch} the buyer read: the oracle set they agree to.
    /// @return tokenId The new token.
    function mint(string calldata prompt, uint8 tier, uint8 aspect, uint256 expectedEpoch)
        external
        payable
        returns (uint256 tokenId)
    {
        (uint256 config, uint256 usdPrice) = _checkTerms(prompt, tier, aspect, expectedEpoch);
        uint256 priceGwei = _gweiFor(config, usdPrice);
        uint256 escrow = priceGwei * 1 gwei;
        if (msg.value < escrow) revert InsufficientPayment(tier, escrow, msg.value);
        tokenId = _record(msg.sender, config, _terms(tier, aspect, Asset.ETH, priceGwei), prompt);
        // msg.value >= escrow was checked above.
        unchecked {
            if (msg.value > escrow) _sendValue(msg.sender, msg.value - escrow);
        }
    }

    /// @notice Mints a token to `from` and requests an image, paid in USDC: in this transaction the contract
    /// executes `from`'s EIP-3009 authorization to pay this contract exactly {price}(`tier`), and holds that USDC
    /// in the token's escrow. Anyone may send it (a relayer, the seller's front): the token and any refund go
    /// to `from`. If someone else executed this very authorization in USDC first (copied from the mempool),
    /// the USDC has arrived already: the signature is checked here, and the mint goes ahead once per
    /// authorization, backed by USDC that no one else's books hold.
    /// Requirements: as {mint} for prompt, tier, aspect, pause and epoch (no price feed is read); this
    /// deployment has a USDC rail; the authorization is `from`'s for (to this contract, value {price}(`tier`),
    /// `validAfter`, `validBefore`, `nonce`) and USDC accepts it, or it was executed already and not used here.
    /// @param prompt The text to generate the image from.
    /// @param tier 0 basic, 1 premium, 2 ultra.
    /// @param aspect 0 is 1:1, 1 is 16:9, 2 is 9:16, 3 is 4:3.
    /// @param expectedEpoch The {oracleEpoch} the sender read.
    /// @param from The buyer: the payer of the USDC and the token's first holder.
    /// @param validAfter The authorization is valid after this time (unix seconds).
    /// @param validBefore The authorization is valid before this time.
    /// @param nonce The authorization's unique nonce.
    /// @param signature `from`'s signature: 65 bytes r,s,v from an EOA, or what its ERC-1271 wallet checks.
    /// @return tokenId The new token.
    function mintWithAuthorization(
        string calldata prompt,
        uint8 tier,
        uint8 aspect,
        uint256 expectedEpoch,
        address from,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        bytes calldata signature
    ) external returns (uint256 tokenId) {
        tokenId = _mintWithAuthorization(
            prompt, tier, aspect, expectedEpoch, _Authorization(from, validAfter, validBefore, nonce), signature
        );
    }

    /// @notice {mintWithAuthorization} with the signature as `v`, `r`, `s` (an EOA's).
    /// @param prompt The text to generate the image from.
    /// @param tier 0 basic, 1 premium, 2 ultra.
    /// @param aspect 0 is 1:1, 1 is 16:9, 2 is 9:16, 3 is 4:3.
    /// @param expectedEpoch The {oracleEpoch} the sender read.
    /// @param from The buyer: the payer of the USDC and the token's first holder.
    /// @param validAfter The authorization is valid after this time (unix seconds).
    /// @param validBefore The authorization is valid before this time.
    /// @param nonce The authorization's unique nonce.
    /// @param v The signature's recovery byte.
    /// @param r The signature's r.
    /// @param s The signature's s.
    /// @return tokenId The new token.
    function mintWithAuthorization(
        string calldata prompt,
        uint8 tier,
        uint8 aspect,
        uint256 expectedEpoch,
        address from,
        uint256 validAfter,
        uint256 validBefore,
        bytes32 nonce,
        uint8 v,
        bytes32 r,
        bytes32 s
    ) external returns (uint256 tokenId) {
        tokenId = _mintWithAuthorization(
            prompt,
            tier,
            aspect,
            expectedEpoch,
            _Authorization(from, validAfter, validBefore, nonce),
            abi.encodePacked(r, s, v)
        );
    }

    /// @notice Burns a token whose image did not arrive in time and pays its escrow back to the holder, in the
    /// asset it was paid in. Anyone may call it (the holder, a keeper, the seller's front): the escrow only ever
    /// goes to the holder. If the holder refuses it (a contract without a receive function, one that needs more
    /// than {REFUND_GAS} to receive ether, or a USDC-blacklisted account), the amount is added to the holder's
    /// credit instead, to take with {withdraw} or {withdrawTo}; the refund never reverts on the holder's
    /// account. Works while minting is paused.
    /// Requirements: the request is pending (no image set, not refunded) and `block.timestamp` >= its
    /// deadline.
    /// @param tokenId The token to refund.
    function refund(uint256 tokenId) external {
        uint256 packed = _getExtraData(tokenId);
        Status status = _status(tokenId, packed);
        if (status != Status.Pending) revert RequestNotPending(tokenId, status);
        uint256 deadline = (packed >> _DEADLINE_SHIFT) & _MASK40;
        if (block.timestamp < deadline) revert DeadlineNotReached(tokenId, deadline);

        address holder = ownerOf(tokenId);
        _burn(tokenId);
        // Only the status bits change within the 96 bits read above.
        // forge-lint: disable-next-line(unsafe-typecast)
        _setExtraData(tokenId, uint96((packed & ~_STATUS_MASK) | uint256(Status.Refunded)));
        uint256 units = (packed >> _ESCROW_SHIFT) & _MASK48;
        if ((packed >> _ASSET_SHIFT) & 1 == 0) {
            uint256 amount = units * 1 gwei;
            bool credited = !_trySendValue(holder, amount, REFUND_GAS);
            // slither-disable-next-line reentrancy-no-eth,reentrancy-benign
            if (credited) _accounts[holder] += amount << _CREDIT_SHIFT;
            emit Refunded(tokenId, holder, Asset.ETH, amount, credited);
        } else {
            // The USDC leaves the books unless it stays as the holder's credit.
            _usdcLiabilities -= units;
            bool credited = !_tryTransferUsdc(holder, units);
            if (credited) {
                // slither-disable-next-line reentrancy-no-eth,reentrancy-benign
                _usdcLiabilities += units;
                _accounts[holder] += units << _USDC_CREDIT_SHIFT;
            }
            emit Refunded(tokenId, holder, Asset.USDC, units, credited);
        }
    }

    /*//////////////////////////////////////////////////////////////
                             ORACLE ACTIONS
    //////////////////////////////////////////////////////////////*/

    /// @notice Sets the token's image, once, and credits the caller the escrow less the protocol fee, in the
    /// escrow's asset. `metadataDigest` is the sha256 of the token's metadata JSON pinned to IPFS as one raw
    /// block, so {tokenURI} becomes `ipfs://` + the CIDv1 (raw, sha2-256, base32) of that digest.
    /// Requirements:
    /// - the caller is an authorised oracle, and was already (and continuously) authorised when the token
    ///   was minted.
    /// - the request is pending, its image is not set, and `block.timestamp` < its deadline.
    /// - `metadataDigest` is not zero.
    /// @param tokenId The token whose request is fulfilled.
    /// @param metadataDigest sha256 of the metadata JSON bytes.
    function setImage(uint256 tokenId, bytes32 metadataDigest) external {
        uint256 account = _accounts[msg.sender];
        if (account & 1 == 0) revert NotOracle(msg.sender);
        (uint256 payment, uint256 fee, bool inUsdc) = _fulfil(tokenId, metadataDigest, _feeBps(_config), account);
        if (inUsdc) {
            _accounts[msg.sender] = account + (payment << _USDC_CREDIT_SHIFT);
            _feeAccount += fee << _USDC_FEE_SHIFT;
        } else {
            _accounts[msg.sender] = account + (payment << _CREDIT_SHIFT);
            _feeAccount += fee << 1;
        }
    }

    /// @notice {setImage} for many tokens in one transaction, in either asset. All or nothing: if any token
    /// fails a requirement of {setImage}, the whole call reverts with that token's error.
    /// Requirements: `tokenIds` and `metadataDigests` have the same, non-zero length.
    /// @param tokenIds The tokens whose requests are fulfilled.
    /// @param metadataDigests sha256 of each token's metadata JSON, in the same order.
    function setImages(uint256[] calldata tokenIds, bytes32[] calldata metadataDigests) external {
        uint256 count = tokenIds.length;
        if (count == 0 || count != metadataDigests.length) revert InvalidBatch(count, metadataDigests.length);
        uint256 account = _accounts[msg.sender];
        if (account & 1 == 0) revert NotOracle(msg.sender);
        uint256 bps = _feeBps(_config);
        // Shifted into place as they are summed: ETH at [41..] and [1..], USDC at [169..] and [129..].
        uint256 credits = 0;
        uint256 fees = 0;
        for (uint256 i; i < count; ++i) {
            (uint256 payment, uint256 fee, bool inUsdc) = _fulfil(tokenIds[i], metadataDigests[i], bps, account);
            // Each term is an escrow below 2**52 gwei or 2**48 USDC units; the sums cannot overflow a field.
            unchecked {
                if (inUsdc) {
                    credits += payment << _USDC_CREDIT_SHIFT;
                    fees += fee << _USDC_FEE_SHIFT;
                } else {
                    credits += payment << _CREDIT_SHIFT;
                    fees += fee << 1;
                }
            }
        }
        _accounts[msg.sender] = account + credits;
        _feeAccount += fees;
    }

    /*//////////////////////////////////////////////////////////////
                               WITHDRAWALS
    //////////////////////////////////////////////////////////////*/

    /// @notice Pays the caller its whole credit to itself: oracle earnings and refunds its account refused, in
    /// ETH and in USDC, plus the protocol fees if the caller is the owner. Escrow of pending requests is never
    /// withdrawable.
    /// Requirements: the caller has something to withdraw, accepts ether if it has ETH credit, and can receive
    /// USDC if it has USDC credit (otherwise use {withdrawTo}).
    function withdraw() external {
        _withdraw(payable(msg.sender));
    }

    /// @notice {withdraw}, paid to `recipient`: how a contract that refuses ether (for example the holder of a
    /// token refunded by someone else) or a blacklisted USDC holder takes its credit out.
    /// Requirements: as {withdraw}, for `recipient`, which is not the zero address.
    /// @param recipient Receives the ETH and the USDC.
    function withdrawTo(address payable recipient) external {
        if (recipient == address(0)) revert ZeroAddress();
        _withdraw(recipient);
    }

    /*//////////////////////////////////////////////////////////////
                             OWNER SETTINGS
    //////////////////////////////////////////////////////////////*/

    /// @notice Sets the price of `tier` for later mints, in US dollars with 6 decimals; 0 takes the tier off
    /// sale. An ETH buyer's `msg.value` caps what they pay; a USDC buyer signs the exact price.
    /// Requirements: owner only; `tier` < {TIER_COUNT}; `usdPrice` <= {MAX_PRICE}.
    /// @param tier 0 basic, 1 premium, 2 ultra.
    /// @param usdPrice Price in US dollars with 6 decimals (100000 is $0.10).
    function setPrice(uint8 tier, uint256 usdPrice) external onlyOwner {
        _setPrice(tier, usdPrice);
    }

    /// @notice Authorises or revokes an oracle. An oracle settles only tokens minted after it was
    /// authorised, while it stays authorised: authorising bumps {oracleEpoch}, so a mint sent with the epoch
    /// its buyer saw reverts rather than bind an oracle set the buyer never saw, and never reaches tokens
    /// minted before. Revoking takes effect at once; authorising again starts from the next token. A revoked
    /// oracle keeps its credit and can withdraw it.
    /// Requirements: owner only; `oracle` is not the zero address.
    /// @param oracle The account that calls {setImage}.
    /// @param authorised True to authorise, false to revoke.
    function setOracle(address oracle, bool authorised) external onlyOwner {
        _setOracle(oracle, authorised);
    }

    /// @notice Sets the protocol fee taken from each escrow when its image is set.
    /// Requirements: owner only; `feeBps` <= {MAX_FEE_BPS}.
    /// @param newFeeBps Basis points of the escrow.
    function setFee(uint16 newFeeBps) external onlyOwner {
        _setFee(newFeeBps);
    }

    /// @notice Sets the time an oracle has for requests minted from now on; earlier deadlines stay.
    /// Requirements: owner only; {MIN_TIMEOUT} <= `timeout` <= {MAX_TIMEOUT}.
    /// @param newTimeout Seconds from mint to deadline.
    function setTimeout(uint32 newTimeout) external onlyOwner {
        if (newTimeout < MIN_TIMEOUT || newTimeout > MAX_TIMEOUT) {
            revert TimeoutOutOfRange(newTimeout, MIN_TIMEOUT, MAX_TIMEOUT);
        }
        _config = (_config & ~(_MASK32 << _TIMEOUT_SHIFT)) | (uint256(newTimeout) << _TIMEOUT_SHIFT);
        emit TimeoutUpdated(newTimeout);
    }

    /// @notice Sets the greatest age of a Chainlink ETH/USD answer that an ETH mint accepts (the feed's
    /// heartbeat plus a margin).
    /// Requirements: owner only; {MIN_PRICE_AGE} <= `newMaxAge` <= {MAX_PRICE_AGE}.
    /// @param newMaxAge Seconds.
    function setMaxPriceAge(uint32 newMaxAge) external onlyOwner {
        if (newMaxAge < MIN_PRICE_AGE || newMaxAge > MAX_PRICE_AGE) {
            revert PriceAgeOutOfRange(newMaxAge, MIN_PRICE_AGE, MAX_PRICE_AGE);
        }
        _config = (_config & ~(type(uint256).max << _AGE_SHIFT)) | (uint256(newMaxAge) << _AGE_SHIFT);
        emit MaxPriceAgeUpdated(newMaxAge);
    }

    /// @notice Sets the URI that {tokenURI} returns while a token's image is pending.
    /// Requirements: owner only.
    /// @param uri Any URI, e.g. `ipfs://<cid>` of a placeholder metadata JSON.
    function setPlaceholderURI(string calldata uri) external onlyOwner {
        _placeholderURI = uri;
        emit PlaceholderURIUpdated(uri);
        emit BatchMetadataUpdate(1, type(uint256).max);
    }

    /// @notice ERC-7572: sets the contract-level metadata URI.
    /// Requirements: owner only.
    /// @param uri The contract metadata URI.
    function setContractURI(string calldata uri) external onlyOwner {
        _contractURI = uri;
        emit ContractURIUpdated();
    }

    /// @notice ERC-2981: sets the default royalty for secondary sales.
    /// Requirements: owner only; `receiver` is not zero; `feeBps` <= 10000.
    /// @param receiver Who receives royalties.
    /// @param royaltyBps Royalty in basis points of the sale price.
    function setDefaultRoyalty(address receiver, uint96 royaltyBps) external onlyOwner {
        _setDefaultRoyalty(receiver, royaltyBps);
        emit DefaultRoyaltyUpdated(receiver, royaltyBps);
    }

    /// @notice Pauses minting. Image delivery, refunds and withdrawals go on.
    /// Requirements: owner only.
    function pause() external onlyOwner {
        _config |= _PAUSED_FLAG;
        emit MintingPaused(true);
    }

    /// @notice Resumes minting.
    /// Requirements: owner only.
    function unpause() external onlyOwner {
        _config &= ~_PAUSED_FLAG;
        emit MintingPaused(false);
    }

    /*//////////////////////////////////////////////////////////////
                    ERC-721 CALLS THAT TAKE NO ETHER
    //////////////////////////////////////////////////////////////*/

    // Solady declares these payable; ether sent with them would belong to no escrow and no credit, and no
    // function could ever pay it out. They refuse it instead.

    /// @notice ERC-721 approve. Requirements: as ERC-721, and no ether.
    /// @param account The account approved for `id`.
    /// @param id The token.
    function approve(address account, uint256 id) public payable override {
        _refuseEther();
        super.approve(account, id);
    }

    /// @notice ERC-721 transferFrom. Requirements: as ERC-721, and no ether.
    /// @param from The holder.
    /// @param to The new holder.
    /// @param id The token.
    function transferFrom(address from, address to, uint256 id) public payable override {
        _refuseEther();
        super.transferFrom(from, to, id);
    }

    /// @notice ERC-721 safeTransferFrom. Requirements: as ERC-721, and no ether.
    /// @param from The holder.
    /// @param to The new holder.
    /// @param id The token.
    function safeTransferFrom(address from, address to, uint256 id) public payable override {
        _refuseEther();
        super.safeTransferFrom(from, to, id);
    }

    /// @notice ERC-721 safeTransferFrom with data. Requirements: as ERC-721, and no ether.
    /// @param from The holder.
    /// @param to The new holder.
    /// @param id The token.
    /// @param data Passed to the receiver's onERC721Received.
    function safeTransferFrom(address from, address to, uint256 id, bytes calldata data) public payable override {
        _refuseEther();
        super.safeTransferFrom(from, to, id, data);
    }

    /// @notice Disabled: an ownerless contract would strand the protocol fees and freeze the oracle set.
    function renounceOwnership() public view override onlyOwner {
        revert RenounceDisabled();
    }

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice The token's name.
    function name() public pure override returns (string memory) {
        return "GenImNFT";
    }

    /// @notice The token's symbol.
    function symbol() public pure override returns (string memory) {
        return "GENIM";
    }

    /// @notice Price of `tier` in US dollars with 6 decimals (the USDC a USDC mint pays); 0 if not on sale.
    /// @param tier 0 basic, 1 premium, 2 ultra; reverts with {UnknownTier} above that.
    function price(uint8 tier) external view returns (uint256) {
        return _usdPrice(_config, tier);
    }

    /// @notice The wei an ETH mint of `tier` is charged in this block: {price} at Chainlink's ETH/USD rate,
    /// rounded up to a whole gwei; 0 if not on sale. Reverts as {mint} does while the feed cannot be used.
    /// @param tier 0 basic, 1 premium, 2 ultra; reverts with {UnknownTier} above that.
    function priceInWei(uint8 tier) external view returns (uint256) {
        uint256 config = _config;
        uint256 usdPrice = _usdPrice(config, tier);
        if (usdPrice == 0) return 0;
        (uint256 rate,,) = _ethRate(config);
        return _toGwei(usdPrice, rate) * 1 gwei;
    }

    /// @notice The ETH/USD answer ETH mints use within {RATE_CACHE_WINDOW} of `checkedAt`, the time it was read
    /// from the feed after the sequencer and staleness checks; `updatedAt` is the feed's time for it.
    function cachedRate() external view returns (uint256 answer, uint256 updatedAt, uint256 checkedAt) {
        uint256 cache = _rateCache;
        return (cache >> 80, (cache >> 40) & _MASK40, cache & _MASK40);
    }

    /// @notice How many times an oracle was authorised: every mint names the value its buyer saw.
    function oracleEpoch() external view returns (uint256) {
        return (_config >> _EPOCH_SHIFT) & _MASK40;
    }

    /// @notice The greatest age, in seconds, of a Chainlink ETH/USD answer that an ETH mint accepts.
    function maxPriceAge() external view returns (uint256) {
        return _config >> _AGE_SHIFT;
    }

    /// @notice The request of `tokenId`: status, tier, aspect ratio, asset, deadline, escrow (wei or USDC
    /// units), and the metadata digest once set. A token never minted reads as status None with zeros.
    /// @param tokenId The token.
    function request(uint256 tokenId) external view returns (Request memory) {
        uint256 packed = _getExtraData(tokenId);
        bool inUsdc = (packed >> _ASSET_SHIFT) & 1 != 0;
        uint256 units = (packed >> _ESCROW_SHIFT) & _MASK48;
        return Request({
            status: _status(tokenId, packed),
            tier: uint8((packed >> _TIER_SHIFT) & 3),
            aspect: uint8((packed >> _ASPECT_SHIFT) & 3),
            asset: inUsdc ? Asset.USDC : Asset.ETH,
            // forge-lint: disable-next-line(unsafe-typecast)
            deadline: uint40(packed >> _DEADLINE_SHIFT), // the 40 deadline bits, masked by the cast
            escrow: inUsdc ? units : units * 1 gwei,
            metadataDigest: _metadataDigests[tokenId]
        });
    }

    /// @notice The ETH, in wei, that {withdraw} would pay `account` now.
    /// @param account Any account; for the owner this includes the ETH protocol fees.
    function credit(address account) external view returns (uint256 amount) {
        amount = (_accounts[account] >> _CREDIT_SHIFT) & _MASK128;
        if (account == owner()) amount += (_feeAccount >> 1) & _MASK128;
    }

    /// @notice The USDC, in USDC units, that {withdraw} would pay `account` now.
    /// @param account Any account; for the owner this includes the USDC protocol fees.
    function usdcCredit(address account) external view returns (uint256 amount) {
        amount = _accounts[account] >> _USDC_CREDIT_SHIFT;
        if (account == owner()) amount += _feeAccount >> _USDC_FEE_SHIFT;
    }

    /// @notice The USDC the books hold: pending USDC escrows, USDC credits and USDC fees. The contract's USDC
    /// balance is never below it.
    function usdcLiabilities() external view returns (uint256) {
        return _usdcLiabilities;
    }

    /// @notice Whether `account` may call {setImage} (for tokens from {servesFrom} on).
    /// @param account Any account.
    function isOracle(address account) external view returns (bool) {
        return _accounts[account] & 1 != 0;
    }

    /// @notice The first token id `account` may settle; 0 if it is not an authorised oracle.
    /// @param account Any account.
    function servesFrom(address account) external view returns (uint256) {
        uint256 slot = _accounts[account];
        return slot & 1 == 0 ? 0 : (slot >> _SERVES_FROM_SHIFT) & _MASK40;
    }

    /// @notice Whether minting is paused.
    function paused() external view returns (bool) {
        return _config & _PAUSED_FLAG != 0;
    }

    /// @notice The protocol fee in basis points.
    function feeBps() external view returns (uint256) {
        return _feeBps(_config);
    }

    /// @notice Seconds from mint to deadline for mints from now on.
    function timeout() external view returns (uint256) {
        return (_config >> _TIMEOUT_SHIFT) & _MASK32;
    }

    /// @notice The id the next mint receives.
    function nextTokenId() external view returns (uint256) {
        return _config & _MASK40;
    }

    /// @notice `ipfs://` + CIDv1 of the metadata once the image is set; the placeholder URI before.
    /// Reverts with `TokenDoesNotExist()` for tokens never minted or burned by a refund.
    /// @param tokenId The token.
    function tokenURI(uint256 tokenId) public view override returns (string memory) {
        if (!_exists(tokenId)) revert TokenDoesNotExist();
        bytes32 digest = _metadataDigests[tokenId];
        if (digest == 0) return _placeholderURI;
        return string.concat("ipfs://", _cidOf(digest));
    }

    /// @notice ERC-7572: the contract-level metadata URI.
    function contractURI() external view returns (string memory) {
        return _contractURI;
    }

    /// @notice ERC-165: ERC-165, ERC-721, ERC-721 metadata, ERC-4906 and ERC-2981.
    /// @param interfaceId The interface to ask about.
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, ERC2981) returns (bool) {
        return interfaceId == _INTERFACE_ID_ERC4906 || ERC721.supportsInterface(interfaceId)
            || ERC2981.supportsInterface(interfaceId);
    }

    /*//////////////////////////////////////////////////////////////
                            INTERNAL FUNCTIONS
    //////////////////////////////////////////////////////////////*/

    // The part of an EIP-3009 authorization the buyer chose; `to` is this contract and `value` the price.
    struct _Authorization {
        address from;
        uint256 validAfter;
        uint256 validBefore;
        bytes32 nonce;
    }

    // The checks every mint makes before any payment; returns the config read and the tier's USD price.
    function _checkTerms(string calldata prompt, uint8 tier, uint8 aspect, uint256 expectedEpoch)
        private
        view
        returns (uint256 config, uint256 usdPrice)
    {
        uint256 length = bytes(prompt).length;
        if (length == 0) revert EmptyPrompt();
        if (length > MAX_PROMPT_BYTES) revert PromptTooLong(length, MAX_PROMPT_BYTES);
        if (aspect >= ASPECT_COUNT) revert UnknownAspect(aspect);
        config = _config;
        if (config & _PAUSED_FLAG != 0) revert MintingIsPaused();
        usdPrice = _usdPrice(config, tier);
        if (usdPrice == 0) revert TierDisabled(tier);
        uint256 epoch = (config >> _EPOCH_SHIFT) & _MASK40;
        if (expectedEpoch != epoch) revert OracleSetChanged(expectedEpoch, epoch);
    }

    // The request bits a mint fixes besides status and deadline; `units` is the escrow in the request's unit:
    // gwei for ETH, USDC units for USDC (checked to fit 48 bits: a USDC price is below 2**32).
    function _terms(uint8 tier, uint8 aspect, Asset asset, uint256 units) private pure returns (uint256) {
        return (uint256(tier) << _TIER_SHIFT) | (uint256(aspect) << _ASPECT_SHIFT) | (units << _ESCROW_SHIFT)
            | (uint256(asset) << _ASSET_SHIFT);
    }

    // Mints the next token to `buyer` with its request (`terms` from {_terms}) and emits it with the prompt.
    function _record(address buyer, uint256 config, uint256 terms, string calldata prompt)
        private
        returns (uint256 tokenId)
    {
        tokenId = config & _MASK40;
        // Ids start at 1 and grow by one per mint; 2**40 - 1 mints would cost more gas than exists.
        unchecked {
            _config = config + 1;
        }
        // Masked to its 40 bits so it can never carry into the escrow field; a 32-bit timeout after today's
        // timestamp fits 40 bits until the year 36812.
        uint256 deadline = (block.timestamp + ((config >> _TIMEOUT_SHIFT) & _MASK32)) & _MASK40;
        // The fields fill 95 bits: 2 + 2 + 2 + 40 + 48 + 1.
        uint256 packed = terms | uint256(Status.Pending) | (deadline << _DEADLINE_SHIFT);
        // forge-lint: disable-next-line(unsafe-typecast)
        _mintAndSetExtraDataUnchecked(buyer, tokenId, uint96(packed));
        bool inUsdc = (packed >> _ASSET_SHIFT) & 1 != 0;
        uint256 units = (packed >> _ESCROW_SHIFT) & _MASK48;
        emit ImageRequested(
            tokenId,
            buyer,
            uint8((packed >> _TIER_SHIFT) & 3),
            uint8((packed >> _ASPECT_SHIFT) & 3),
            inUsdc ? Asset.USDC : Asset.ETH,
            inUsdc ? units : units * 1 gwei,
            // forge-lint: disable-next-line(unsafe-typecast)
            uint40(deadline),
            prompt
        );
    }

    // The USDC rail. The token is recorded and its USDC booked first; then USDC executes the authorization.
    // If USDC refuses it because it was executed already (someone sent it to USDC directly), the USDC is here:
    // the signature is checked against these exact terms and the mint stands, once per authorization, if the
    // balance covers the books. Any other refusal is USDC's own, passed on as it is.
    function _mintWithAuthorization(
        string calldata prompt,
        uint8 tier,
        uint8 aspect,
        uint256 expectedEpoch,
        _Authorization memory auth,
        bytes memory signature
    ) private returns (uint256 tokenId) {
        IUSDC token = usdc;
        if (address(token) == address(0)) revert UsdcRailDisabled();
        (uint256 config, uint256 usdPrice) = _checkTerms(prompt, tier, aspect, expectedEpoch);
        tokenId = _record(auth.from, config, _terms(tier, aspect, Asset.USDC, usdPrice), prompt);
        uint256 liabilities = _usdcLiabilities + usdPrice;
        _usdcLiabilities = liabilities;
        // slither-disable-next-line low-level-calls
        (bool ok, bytes memory reason) = address(token)
            .call(
                abi.encodeCall(
                    IUSDC.transferWithAuthorization,
                    (auth.from, address(this), usdPrice, auth.validAfter, auth.validBefore, auth.nonce, signature)
                )
            );
        if (!ok) _mintWithExecutedAuthorization(token, auth, usdPrice, signature, liabilities, reason);
    }

    // See {_mintWithAuthorization}: the authorization was executed in USDC before this call.
    function _mintWithExecutedAuthorization(
        IUSDC token,
        _Authorization memory auth,
        uint256 value,
        bytes memory signature,
        uint256 liabilities,
        bytes memory reason
    ) private {
        if (!token.authorizationState(auth.from, auth.nonce)) {
            // USDC's own refusal (bad signature, expired, balance too low...): passed on unchanged.
            assembly ("memory-safe") {
                revert(add(reason, 0x20), mload(reason))
            }
        }
        bytes32 key = keccak256(abi.encode(auth.from, auth.nonce));
        bytes32 digest = keccak256(
            abi.encodePacked(
                "\x19\x01",
                token.DOMAIN_SEPARATOR(),
                keccak256(
                    abi.encode(
                        _TRANSFER_WITH_AUTHORIZATION_TYPEHASH,
                        auth.from,
                        address(this),
                        value,
                        auth.validAfter,
                        auth.validBefore,
                        auth.nonce
                    )
                )
            )
        );
        if (_claimedAuthorizations[key] || !SignatureCheckerLib.isValidSignatureNow(auth.from, digest, signature)) {
            revert AuthorizationNotUsable(auth.from, auth.nonce);
        }
        uint256 balance = token.balanceOf(address(this));
        if (balance < liabilities) revert PaymentNotReceived(auth.from, auth.nonce, balance, liabilities);
        // slither-disable-next-line reentrancy-no-eth,reentrancy-benign
        _claimedAuthorizations[key] = true;
    }

    // Checks and records one image; returns what the oracle and the protocol are owed for it, and in which
    // asset. `account` is the caller's `_accounts` slot, already checked to be an authorised oracle.
    function _fulfil(uint256 tokenId, bytes32 metadataDigest, uint256 newFeeBps, uint256 account)
        private
        returns (uint256 payment, uint256 fee, bool inUsdc)
    {
        if (metadataDigest == 0) revert InvalidDigest(tokenId);
        uint256 firstServed = (account >> _SERVES_FROM_SHIFT) & _MASK40;
        if (tokenId < firstServed) revert OracleAuthorisedAfterMint(tokenId, msg.sender, firstServed);
        uint256 packed = _getExtraData(tokenId);
        if (packed & _STATUS_MASK != uint256(Status.Pending)) {
            revert RequestNotPending(tokenId, Status(packed & _STATUS_MASK));
        }
        bytes32 existing = _metadataDigests[tokenId];
        if (existing != 0) revert ImageAlreadySet(tokenId, existing);
        uint256 deadline = (packed >> _DEADLINE_SHIFT) & _MASK40;
        if (block.timestamp >= deadline) revert DeadlinePassed(tokenId, deadline);

        _metadataDigests[tokenId] = metadataDigest;
        inUsdc = (packed >> _ASSET_SHIFT) & 1 != 0;
        uint256 escrow = (packed >> _ESCROW_SHIFT) & _MASK48;
        if (!inUsdc) escrow *= 1 gwei;
        // newFeeBps <= MAX_FEE_BPS < _BPS, so fee <= escrow.
        unchecked {
            fee = escrow * newFeeBps / _BPS;
            payment = escrow - fee;
        }
        emit ImageSet(tokenId, msg.sender, metadataDigest, inUsdc ? Asset.USDC : Asset.ETH, payment, fee);
        emit MetadataUpdate(tokenId);
    }

    // Pays the caller's ETH and USDC credit (and the owner's fees) to `recipient`.
    function _withdraw(address payable recipient) private {
        uint256 account = _accounts[msg.sender];
        uint256 ethAmount = (account >> _CREDIT_SHIFT) & _MASK128;
        uint256 usdcAmount = account >> _USDC_CREDIT_SHIFT;
        if (ethAmount | usdcAmount != 0) _accounts[msg.sender] = account & _ORACLE_BITS;
        if (msg.sender == owner()) {
            uint256 fees = _feeAccount;
            if (fees != 1) {
                ethAmount += (fees >> 1) & _MASK128;
                usdcAmount += fees >> _USDC_FEE_SHIFT;
                _feeAccount = 1;
            }
        }
        if (ethAmount | usdcAmount == 0) revert NothingToWithdraw(msg.sender);
        emit Withdrawn(msg.sender, recipient, ethAmount, usdcAmount);
        if (usdcAmount != 0) {
            _usdcLiabilities -= usdcAmount;
            if (!_tryTransferUsdc(recipient, usdcAmount)) revert UsdcTransferFailed(recipient, usdcAmount);
        }
        if (ethAmount != 0) _sendValue(recipient, ethAmount);
    }

    function _status(uint256 tokenId, uint256 packed) private view returns (Status status) {
        status = Status(packed & _STATUS_MASK);
        if (status == Status.Pending && _metadataDigests[tokenId] != 0) status = Status.Fulfilled;
    }

    function _usdPrice(uint256 config, uint8 tier) private pure returns (uint256) {
        if (tier >= TIER_COUNT) revert UnknownTier(tier);
        return (config >> (_PRICES_SHIFT + _PRICE_BITS * tier)) & _MASK32;
    }

    // `usdPrice` in gwei at the checked ETH/USD rate, rounded up; keeps a freshly read rate for later mints.
    function _gweiFor(uint256 config, uint256 usdPrice) private returns (uint256) {
        (uint256 rate, uint256 cache, bool refreshed) = _ethRate(config);
        if (refreshed) _rateCache = cache;
        return _toGwei(usdPrice, rate);
    }

    // The ETH/USD answer: the cached one within {RATE_CACHE_WINDOW} of its read while it is at most
    // {maxPriceAge} old, else read from the feed after the L2 sequencer check (`refreshed`, with the new cache).
    function _ethRate(uint256 config) private view returns (uint256 rate, uint256 cache, bool refreshed) {
        uint256 maxAge = config >> _AGE_SHIFT;
        cache = _rateCache;
        // A cached answer that has grown older than maxAge is not reused: the feed may hold a newer one (if not,
        // the read below reverts StalePrice as the cache would have).
        if (
            block.timestamp < (cache & _MASK40) + RATE_CACHE_WINDOW
                && ((cache >> 40) & _MASK40) + maxAge >= block.timestamp
        ) {
            return (cache >> 80, cache, false);
        }
        AggregatorV3Interface sequencer = sequencerUptimeFeed;
        if (address(sequencer) != address(0)) {
            // answer 0: up, 1: down; startedAt: when it last changed (0 only before the feed's first round).
            // roundId and answeredInRound are deprecated by Chainlink; updatedAt says nothing more here.
            // slither-disable-next-line unused-return
            (, int256 down, uint256 since,,) = sequencer.latestRoundData();
            if (down != 0 || since == 0) revert SequencerDown(since);
            if (block.timestamp < since + SEQUENCER_GRACE_PERIOD) {
                revert SequencerGracePeriod(since + SEQUENCER_GRACE_PERIOD);
            }
        }
        // roundId, startedAt and answeredInRound are deprecated or redundant for a price (Chainlink's docs).
        // slither-disable-next-line unused-return
        (, int256 answer,, uint256 updatedAt,) = ethUsdFeed.latestRoundData();
        if (answer <= 0 || answer >= int256(1 << 176)) revert InvalidPrice(answer);
        if (updatedAt + maxAge < block.timestamp) revert StalePrice(updatedAt, maxAge);
        // answer is in (0, 2**176), checked above.
        // forge-lint: disable-next-line(unsafe-typecast)
        rate = uint256(answer);
        cache = block.timestamp | ((updatedAt & _MASK40) << 40) | (rate << 80);
        refreshed = true;
    }

    // usdPrice < 2**32 and the scale is 10**(decimals + 3): no overflow for any feed's decimals below 60.
    function _toGwei(uint256 usdPrice, uint256 rate) private view returns (uint256 priceGwei) {
        priceGwei = (usdPrice * _FEED_SCALE + rate - 1) / rate;
        if (priceGwei > _MASK48) revert PriceOutOfRange(priceGwei);
    }

    function _feeBps(uint256 config) private pure returns (uint256) {
        return (config >> _FEE_SHIFT) & _MASK16;
    }

    function _setPrice(uint8 tier, uint256 usdPrice) private {
        if (tier >= TIER_COUNT) revert UnknownTier(tier);
        if (usdPrice > MAX_PRICE) revert UnrepresentablePrice(usdPrice, MAX_PRICE);
        uint256 shift = _PRICES_SHIFT + _PRICE_BITS * tier;
        _config = (_config & ~(_MASK32 << shift)) | (usdPrice << shift);
        emit PriceUpdated(tier, usdPrice);
    }

    function _setFee(uint16 newFeeBps) private {
        if (newFeeBps > MAX_FEE_BPS) revert FeeTooHigh(newFeeBps, MAX_FEE_BPS);
        _config = (_config & ~(_MASK16 << _FEE_SHIFT)) | (uint256(newFeeBps) << _FEE_SHIFT);
        emit FeeUpdated(newFeeBps);
    }

    // Authorising records the next token id as the first this oracle may settle (tokens minted before it
    // never consented to it) and bumps the oracle epoch, so that mints in flight that named the old epoch
    // revert; authorising an oracle that is already authorised changes nothing.
    function _setOracle(address oracle, bool authorised) private {
        if (oracle == address(0)) revert ZeroAddress();
        uint256 account = _accounts[oracle];
        uint256 config = _config;
        if (!authorised) {
            account &= ~_ORACLE_BITS;
        } else if (account & 1 == 0) {
            account = (account & ~_ORACLE_BITS) | ((config & _MASK40) << _SERVES_FROM_SHIFT) | 1;
            // 2**40 authorisations cannot happen: the epoch never carries into the price-age field.
            config += uint256(1) << _EPOCH_SHIFT;
            _config = config;
        }
        _accounts[oracle] = account;
        emit OracleUpdated(
            oracle,
            authorised,
            authorised ? (account >> _SERVES_FROM_SHIFT) & _MASK40 : 0,
            (config >> _EPOCH_SHIFT) & _MASK40
        );
    }

    function _refuseEther() private view {
        if (msg.value != 0) revert EtherNotAccepted(msg.value);
    }

    function _sendValue(address to, uint256 amount) private {
        if (!_trySendValue(to, amount, gasleft())) revert TransferFailed(to, amount);
    }

    // Forwards `gasLimit` (all of it for the caller's own withdrawals and change: smart wallets need more than
    // a stipend; {REFUND_GAS} for refunds, which a stranger may pay for) but copies no return data, so a
    // receiver cannot make the caller pay for a huge revert message.
    function _trySendValue(address to, uint256 amount, uint256 gasLimit) private returns (bool ok) {
        // slither-disable-next-line arbitrary-send-eth,low-level-calls
        assembly ("memory-safe") {
            ok := call(gasLimit, to, amount, codesize(), 0x00, codesize(), 0x00)
        }
    }

    // USDC's transfer, reporting failure (a paused token, a blacklisted recipient) instead of reverting.
    function _tryTransferUsdc(address to, uint256 amount) private returns (bool ok) {
        // slither-disable-next-line low-level-calls
        (bool success, bytes memory data) = address(usdc).call(abi.encodeCall(IUSDC.transfer, (to, amount)));
        ok = success && (data.length == 0 || abi.decode(data, (bool)));
    }

    // base32 (RFC 4648, lower case, no padding) of the 36-byte CIDv1, behind the multibase prefix "b".
    function _cidOf(bytes32 digest) private pure returns (string memory) {
        bytes memory cid = abi.encodePacked(_CID_PREFIX, digest);
        bytes memory out = new bytes(59); // "b" + ceil(36 * 8 / 5)
        out[0] = "b";
        uint256 buffer = 0;
        uint256 bits = 0;
        uint256 j = 1;
        for (uint256 i; i < cid.length; ++i) {
            buffer = (buffer << 8) | uint8(cid[i]);
            bits += 8;
            while (bits >= 5) {
                bits -= 5;
                out[j++] = _BASE32_ALPHABET[(buffer >> bits) & 31];
            }
        }
        if (bits > 0) out[j] = _BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
        return string(out);
    }
}
