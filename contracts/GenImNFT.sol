// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ERC721} from "solady/tokens/ERC721.sol";
import {ERC2981} from "solady/tokens/ERC2981.sol";

/// @title GenImNFT: pay-per-image AI generation with per-token escrow
/// @notice A buyer mints a token and pays its tier's price in the same transaction; the price is held in
/// that token's escrow. An authorised oracle generates the image for the prompt bound in the mint event,
/// pins the image and its ERC-721 metadata to IPFS, and calls {setImage} once; only then is the oracle
/// credited, from that token's own escrow, less the protocol fee. If no image arrives before the token's
/// deadline, {refund} pays the escrow back to the holder.
///
/// The contract is not upgradeable: buyers must be able to trust the code they paid into.
///
/// Invariants (each one is tested by name in tests/foundry/GenImNFT.invariants.t.sol and in tests/):
/// - `EscrowIsSolvent`: address(this).balance >= sum of pending escrows + sum of credits + protocol fees.
///   Without forced ether (selfdestruct, coinbase) the two sides are equal.
/// - `OneImagePerToken`: a token's metadata digest is written at most once and never changes.
/// - `EscrowPaidOutOnce`: every escrow leaves the contract's books exactly once, either as oracle credit
///   plus fee (fulfilled) or as a refund to the holder (refunded); never both, never twice.
/// - `OwnerCannotTakeEscrow`: the owner can withdraw only protocol fees and its own credit, even after it
///   authorises itself or anyone else as an oracle (see `ConsentAtMint`).
/// - `ConsentAtMint`: a token is settled only by an oracle that was authorised when the token was minted and
///   has stayed authorised since. Authorising an account (the owner included) never reaches tokens minted
///   before; revoking takes effect at once, and re-authorising starts afresh from the next token.
/// - `RefundsAlwaysLand`: once a pending request's deadline has passed, anyone can refund it and the call
///   succeeds; the escrow goes to the holder, or to the holder's withdrawable credit if it refuses ether.
/// - `RequestTermsFixedAtMint`: a request's tier, aspect, escrow and deadline never change after mint; later
///   price, fee or timeout changes affect only later mints (the fee applies when the image is set).
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

    /// @notice Prices are stored in gwei in 48 bits: each price must be a whole number of gwei up to this.
    uint256 public constant MAX_PRICE = uint256(type(uint48).max) * 1 gwei;

    /// @notice Highest protocol fee, in basis points of each escrow (20%).
    uint16 public constant MAX_FEE_BPS = 2000;

    /// @notice Bounds of the time an oracle has to deliver an image.
    uint32 public constant MIN_TIMEOUT = 5 minutes;
    uint32 public constant MAX_TIMEOUT = 30 days;

    uint32 private constant _DEFAULT_TIMEOUT = 1 hours;
    uint256 private constant _BPS = 10_000;

    // `_config` bit layout (one slot, read and written once per mint):
    // [0..39]    next token id
    // [40..47]   minting paused (0 or 1)
    // [48..79]   timeout in seconds
    // [80..95]   protocol fee in basis points
    // [96..143]  basic price in gwei
    // [144..191] premium price in gwei
    // [192..239] ultra price in gwei
    // [240..255] unused
    uint256 private constant _PAUSED_SHIFT = 40;
    uint256 private constant _PAUSED_FLAG = uint256(1) << _PAUSED_SHIFT;
    uint256 private constant _TIMEOUT_SHIFT = 48;
    uint256 private constant _FEE_SHIFT = 80;
    uint256 private constant _PRICES_SHIFT = 96;
    uint256 private constant _PRICE_BITS = 48;
    uint256 private constant _MASK16 = 0xffff;
    uint256 private constant _MASK32 = 0xffffffff;
    uint256 private constant _MASK40 = 0xffffffffff;
    uint256 private constant _MASK48 = 0xffffffffffff;

    // Request bit layout, kept in the 96 bits of extra data of the token's ownership slot, so a mint
    // writes the owner and its request with one SSTORE:
    // [0..1]   stored status: Pending, or Refunded. A Pending request whose digest is set reads as
    //          Fulfilled: {setImage} writes only the digest slot, not the ownership slot again.
    // [2..3]   tier
    // [4..5]   aspect ratio
    // [6..45]  deadline (unix seconds, modulo 2**40)
    // [46..93] escrow in gwei (a 48-bit price)
    // [94..95] unused
    uint256 private constant _TIER_SHIFT = 2;
    uint256 private constant _ASPECT_SHIFT = 4;
    uint256 private constant _DEADLINE_SHIFT = 6;
    uint256 private constant _ESCROW_SHIFT = 46;
    uint256 private constant _STATUS_MASK = 3;

    // `_accounts` bit layout (one slot per account, read once by {setImage}):
    // [0]       authorised oracle
    // [1..40]   first token id the oracle may settle: the next id when it was (last) authorised
    // [41..255] credit in wei
    uint256 private constant _SERVES_FROM_SHIFT = 1;
    uint256 private constant _CREDIT_SHIFT = 41;
    uint256 private constant _ORACLE_BITS = (uint256(1) << _CREDIT_SHIFT) - 1;

    // ERC-4906 interface id.
    bytes4 private constant _INTERFACE_ID_ERC4906 = 0x49064906;

    // CIDv1 prefix: version 1, codec raw (0x55), multihash sha2-256 (0x12) of 32 bytes (0x20).
    bytes4 private constant _CID_PREFIX = 0x01551220;
    bytes32 private constant _BASE32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

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

    /// @notice A token's request as {request} reports it.
    struct Request {
        Status status;
        uint8 tier;
        uint8 aspect;
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
    /// @dev `msg.value` is below the tier's price.
    error InsufficientPayment(uint8 tier, uint256 price, uint256 paid);
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
    /// @dev The price is not a whole number of gwei, or exceeds {MAX_PRICE}.
    error UnrepresentablePrice(uint256 price, uint256 maxPrice);
    /// @dev The fee exceeds {MAX_FEE_BPS}.
    error FeeTooHigh(uint256 feeBps, uint256 maxFeeBps);
    /// @dev The timeout is outside [{MIN_TIMEOUT}, {MAX_TIMEOUT}].
    error TimeoutOutOfRange(uint256 timeout, uint256 minTimeout, uint256 maxTimeout);
    /// @dev The zero address cannot be an oracle.
    error ZeroAddressOracle();
    /// @dev Renouncing would strand the protocol fees and freeze the oracle set.
    error RenounceDisabled();
    /// @dev Ether sent with a call that takes none (Solady makes the ERC-721 calls payable).
    error EtherNotAccepted(uint256 value);

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice A token was minted and its image requested; prompt and aspect ratio are bound here, on-chain.
    event ImageRequested(
        uint256 indexed tokenId,
        address indexed requester,
        uint8 indexed tier,
        uint8 aspect,
        uint256 escrow,
        uint40 deadline,
        string prompt
    );
    /// @notice An oracle set the token's image; `payment` was credited to it and `fee` to the protocol.
    event ImageSet(
        uint256 indexed tokenId, address indexed oracle, bytes32 metadataDigest, uint256 payment, uint256 fee
    );
    /// @notice The escrow went back to the holder after the deadline; the token was burned. `credited` is
    /// true when the holder refused the ether and the amount was added to its withdrawable credit instead.
    event Refunded(uint256 indexed tokenId, address indexed holder, uint256 amount, bool credited);
    /// @notice `account` withdrew its credit.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice The price of `tier` was changed; 0 means not on sale.
    event PriceUpdated(uint8 indexed tier, uint256 price);
    /// @notice `oracle` was authorised (for tokens from `servesFrom` on) or revoked (`servesFrom` 0).
    event OracleUpdated(address indexed oracle, bool authorised, uint256 servesFrom);
    /// @notice The protocol fee was changed.
    event FeeUpdated(uint256 feeBps);
    /// @notice The timeout for later mints was changed.
    event TimeoutUpdated(uint256 timeout);
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

    // [0] always 1, [1..255] protocol fees in wei not yet withdrawn; the owner withdraws them. The set bit
    // keeps the slot from ever returning to zero, which would make the next image cost 17,100 gas more.
    uint256 private _feeAccount = 1;

    // See the `_accounts` bit layout above. One slot, so {setImage} checks the caller's consent and credits
    // it with one read and one write. Holders who refused a refund's ether have credit here too.
    mapping(address account => uint256) private _accounts;

    // sha256 of each token's metadata JSON; zero until the image is set.
    mapping(uint256 tokenId => bytes32) private _metadataDigests;

    string private _placeholderURI;
    string private _contractURI;

    /*//////////////////////////////////////////////////////////////
                               CONSTRUCTOR
    //////////////////////////////////////////////////////////////*/

    /// @param initialOwner Receives ownership (and the protocol fees).
    /// @param prices Price in wei of each tier (0 disables it); each must satisfy {setPrice}'s bounds.
    /// @param initialFeeBps Protocol fee in basis points, at most {MAX_FEE_BPS}.
    /// @param oracles Accounts authorised to set images from the start.
    constructor(address initialOwner, uint256[3] memory prices, uint16 initialFeeBps, address[] memory oracles)
        Ownable(initialOwner)
    {
        _config = 1 | (uint256(_DEFAULT_TIMEOUT) << _TIMEOUT_SHIFT);
        emit TimeoutUpdated(_DEFAULT_TIMEOUT);
        for (uint8 tier; tier < TIER_COUNT; ++tier) {
            _setPrice(tier, prices[tier]);
        }
        _setFee(initialFeeBps);
        for (uint256 i; i < oracles.length; ++i) {
            _setOracle(oracles[i], true);
        }
    }

    /*//////////////////////////////////////////////////////////////
                              BUYER ACTIONS
    //////////////////////////////////////////////////////////////*/

    /// @notice Mints a token to the caller and requests an image for `prompt` at `tier` in `aspect`.
    /// The tier's price is held in the token's escrow; any excess of `msg.value` is returned at once.
    /// Only oracles authorised now can ever settle this token.
    /// Requirements:
    /// - `prompt` is 1 to {MAX_PROMPT_BYTES} bytes; `aspect` < {ASPECT_COUNT}.
    /// - minting is not paused; `tier` exists and is on sale; `msg.value` >= {price}(`tier`).
    /// - if there is excess, the caller accepts ether.
    /// @param prompt The text to generate the image from; it is emitted in {ImageRequested}.
    /// @param tier 0 basic, 1 premium, 2 ultra.
    /// @param aspect The image's shape: 0 is 1:1, 1 is 16:9, 2 is 9:16, 3 is 4:3.
    /// @return tokenId The new token.
    function mint(string calldata prompt, uint8 tier, uint8 aspect) external payable returns (uint256 tokenId) {
        {
            uint256 length = bytes(prompt).length;
            if (length == 0) revert EmptyPrompt();
            if (length > MAX_PROMPT_BYTES) revert PromptTooLong(length, MAX_PROMPT_BYTES);
        }
        if (aspect >= ASPECT_COUNT) revert UnknownAspect(aspect);
        uint256 config = _config;
        if (config & _PAUSED_FLAG != 0) revert MintingIsPaused();
        uint256 priceGwei = _priceGwei(config, tier);
        if (priceGwei == 0) revert TierDisabled(tier);
        uint256 escrow = priceGwei * 1 gwei;
        if (msg.value < escrow) revert InsufficientPayment(tier, escrow, msg.value);

        tokenId = config & _MASK40;
        // Ids start at 1 and grow by one per mint; 2**40 - 1 mints would cost more gas than exists.
        unchecked {
            _config = config + 1;
        }
        // Masked to its 40 bits so it can never carry into the escrow field; a 32-bit timeout after today's
        // timestamp fits 40 bits until the year 36812.
        uint256 deadline = (block.timestamp + ((config >> _TIMEOUT_SHIFT) & _MASK32)) & _MASK40;
        // The fields fill 94 bits: 2 + 2 + 2 + 40 + 48 (a price is at most 48 bits of gwei).
        // forge-lint: disable-next-line(unsafe-typecast)
        _mintAndSetExtraDataUnchecked(
            msg.sender,
            tokenId,
            uint96(
                uint256(Status.Pending) | (uint256(tier) << _TIER_SHIFT) | (uint256(aspect) << _ASPECT_SHIFT)
                    | (deadline << _DEADLINE_SHIFT) | (priceGwei << _ESCROW_SHIFT)
            )
        );
        // forge-lint: disable-next-line(unsafe-typecast)
        emit ImageRequested(tokenId, msg.sender, tier, aspect, escrow, uint40(deadline), prompt);

        // msg.value >= escrow was checked above.
        unchecked {
            if (msg.value > escrow) _sendValue(msg.sender, msg.value - escrow);
        }
    }

    /// @notice Burns a token whose image did not arrive in time and pays its escrow to the holder. Anyone
    /// may call it (the holder, a keeper, the seller's front): the escrow only ever goes to the holder. If
    /// the holder refuses ether (a contract without a receive function, or this contract itself), the
    /// amount is added to the holder's credit instead, to take with {withdraw}; the refund never reverts
    /// on the holder's account. Works while minting is paused.
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
        uint256 amount = ((packed >> _ESCROW_SHIFT) & _MASK48) * 1 gwei;
        bool credited = !_trySendValue(holder, amount);
        if (credited) _accounts[holder] += amount << _CREDIT_SHIFT;
        emit Refunded(tokenId, holder, amount, credited);
    }

    /*//////////////////////////////////////////////////////////////
                             ORACLE ACTIONS
    //////////////////////////////////////////////////////////////*/

    /// @notice Sets the token's image, once, and credits the caller the escrow less the protocol fee.
    /// `metadataDigest` is the sha256 of the token's metadata JSON pinned to IPFS as one raw block, so
    /// {tokenURI} becomes `ipfs://` + the CIDv1 (raw, sha2-256, base32) of that digest.
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
        (uint256 payment, uint256 fee) = _fulfil(tokenId, metadataDigest, _feeBps(_config), account);
        _accounts[msg.sender] = account + (payment << _CREDIT_SHIFT);
        _feeAccount += fee << 1;
    }

    /// @notice {setImage} for many tokens in one transaction. All or nothing: if any token fails a
    /// requirement of {setImage}, the whole call reverts with that token's error.
    /// Requirements: `tokenIds` and `metadataDigests` have the same, non-zero length.
    /// @param tokenIds The tokens whose requests are fulfilled.
    /// @param metadataDigests sha256 of each token's metadata JSON, in the same order.
    function setImages(uint256[] calldata tokenIds, bytes32[] calldata metadataDigests) external {
        uint256 count = tokenIds.length;
        if (count == 0 || count != metadataDigests.length) revert InvalidBatch(count, metadataDigests.length);
        uint256 account = _accounts[msg.sender];
        if (account & 1 == 0) revert NotOracle(msg.sender);
        uint256 bps = _feeBps(_config);
        uint256 payments = 0;
        uint256 fees = 0;
        for (uint256 i; i < count; ++i) {
            (uint256 payment, uint256 fee) = _fulfil(tokenIds[i], metadataDigests[i], bps, account);
            // Each term is an escrow below 2**52 gwei; their sum cannot overflow.
            unchecked {
                payments += payment;
                fees += fee;
            }
        }
        _accounts[msg.sender] = account + (payments << _CREDIT_SHIFT);
        _feeAccount += fees << 1;
    }

    /// @notice Pays the caller its whole credit: oracle earnings, refunds its account refused, plus the
    /// protocol fees if the caller is the owner. Escrow of pending requests is never withdrawable.
    /// Requirements: the caller has something to withdraw and accepts ether.
    function withdraw() external {
        uint256 account = _accounts[msg.sender];
        uint256 amount = account >> _CREDIT_SHIFT;
        if (amount != 0) _accounts[msg.sender] = account & _ORACLE_BITS;
        if (msg.sender == owner()) {
            amount += _feeAccount >> 1;
            _feeAccount = 1;
        }
        if (amount == 0) revert NothingToWithdraw(msg.sender);
        emit Withdrawn(msg.sender, amount);
        _sendValue(msg.sender, amount);
    }

    /*//////////////////////////////////////////////////////////////
                             OWNER SETTINGS
    //////////////////////////////////////////////////////////////*/

    /// @notice Sets the price of `tier` for later mints; 0 takes the tier off sale.
    /// Requirements: owner only; `tier` < {TIER_COUNT}; `price` is a whole number of gwei <= {MAX_PRICE}.
    /// @param tier 0 basic, 1 premium, 2 ultra.
    /// @param newPrice Price in wei.
    function setPrice(uint8 tier, uint256 newPrice) external onlyOwner {
        _setPrice(tier, newPrice);
    }

    /// @notice Authorises or revokes an oracle. An oracle settles only tokens minted after it was
    /// authorised, while it stays authorised: authorising never reaches tokens minted before, so buyers
    /// keep the oracle set they paid under. Revoking takes effect at once; authorising again starts from the
    /// next token. A revoked oracle keeps its credit and can withdraw it.
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

    /// @notice Price in wei of `tier` for a mint now; 0 if the tier is not on sale.
    /// @param tier 0 basic, 1 premium, 2 ultra; reverts with {UnknownTier} above that.
    function price(uint8 tier) external view returns (uint256) {
        return _priceGwei(_config, tier) * 1 gwei;
    }

    /// @notice The request of `tokenId`: status, tier, aspect ratio, deadline, escrow, and the metadata
    /// digest once set. A token never minted reads as status None with zeros.
    /// @param tokenId The token.
    function request(uint256 tokenId) external view returns (Request memory) {
        uint256 packed = _getExtraData(tokenId);
        return Request({
            status: _status(tokenId, packed),
            tier: uint8((packed >> _TIER_SHIFT) & 3),
            aspect: uint8((packed >> _ASPECT_SHIFT) & 3),
            // forge-lint: disable-next-line(unsafe-typecast)
            deadline: uint40(packed >> _DEADLINE_SHIFT), // the 40 deadline bits, masked by the cast
            escrow: ((packed >> _ESCROW_SHIFT) & _MASK48) * 1 gwei,
            metadataDigest: _metadataDigests[tokenId]
        });
    }

    /// @notice What {withdraw} would pay `account` now.
    /// @param account Any account; for the owner this includes the protocol fees.
    function credit(address account) external view returns (uint256 amount) {
        amount = _accounts[account] >> _CREDIT_SHIFT;
        if (account == owner()) amount += _feeAccount >> 1;
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

    // Checks and records one image; returns what the oracle and the protocol are owed for it. `account` is
    // the caller's `_accounts` slot, already checked to be an authorised oracle.
    function _fulfil(uint256 tokenId, bytes32 metadataDigest, uint256 newFeeBps, uint256 account)
        private
        returns (uint256 payment, uint256 fee)
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
        uint256 escrow = ((packed >> _ESCROW_SHIFT) & _MASK48) * 1 gwei;
        // newFeeBps <= MAX_FEE_BPS < _BPS, so fee <= escrow.
        unchecked {
            fee = escrow * newFeeBps / _BPS;
            payment = escrow - fee;
        }
        emit ImageSet(tokenId, msg.sender, metadataDigest, payment, fee);
        emit MetadataUpdate(tokenId);
    }

    function _status(uint256 tokenId, uint256 packed) private view returns (Status status) {
        status = Status(packed & _STATUS_MASK);
        if (status == Status.Pending && _metadataDigests[tokenId] != 0) status = Status.Fulfilled;
    }

    function _priceGwei(uint256 config, uint8 tier) private pure returns (uint256) {
        if (tier >= TIER_COUNT) revert UnknownTier(tier);
        return (config >> (_PRICES_SHIFT + _PRICE_BITS * tier)) & _MASK48;
    }

    function _feeBps(uint256 config) private pure returns (uint256) {
        return (config >> _FEE_SHIFT) & _MASK16;
    }

    function _setPrice(uint8 tier, uint256 newPrice) private {
        if (tier >= TIER_COUNT) revert UnknownTier(tier);
        if (newPrice % 1 gwei != 0 || newPrice > MAX_PRICE) revert UnrepresentablePrice(newPrice, MAX_PRICE);
        uint256 shift = _PRICES_SHIFT + _PRICE_BITS * tier;
        _config = (_config & ~(_MASK48 << shift)) | ((newPrice / 1 gwei) << shift);
        emit PriceUpdated(tier, newPrice);
    }

    function _setFee(uint16 newFeeBps) private {
        if (newFeeBps > MAX_FEE_BPS) revert FeeTooHigh(newFeeBps, MAX_FEE_BPS);
        _config = (_config & ~(_MASK16 << _FEE_SHIFT)) | (uint256(newFeeBps) << _FEE_SHIFT);
        emit FeeUpdated(newFeeBps);
    }

    // Authorising records the next token id as the first this oracle may settle (tokens minted before it
    // never consented to it); authorising an oracle that is already authorised changes nothing.
    function _setOracle(address oracle, bool authorised) private {
        if (oracle == address(0)) revert ZeroAddressOracle();
        uint256 account = _accounts[oracle];
        if (!authorised) {
            account &= ~_ORACLE_BITS;
        } else if (account & 1 == 0) {
            account = (account & ~_ORACLE_BITS) | ((_config & _MASK40) << _SERVES_FROM_SHIFT) | 1;
        }
        _accounts[oracle] = account;
        emit OracleUpdated(oracle, authorised, authorised ? (account >> _SERVES_FROM_SHIFT) & _MASK40 : 0);
    }

    function _refuseEther() private view {
        if (msg.value != 0) revert EtherNotAccepted(msg.value);
    }

    function _sendValue(address to, uint256 amount) private {
        if (!_trySendValue(to, amount)) revert TransferFailed(to, amount);
    }

    // Forwards all gas (smart wallets need more than a stipend) but copies no return data, so a receiver
    // cannot make the caller pay for a huge revert message.
    function _trySendValue(address to, uint256 amount) private returns (bool ok) {
        // slither-disable-next-line arbitrary-send-eth,low-level-calls
        assembly ("memory-safe") {
            ok := call(gas(), to, amount, codesize(), 0x00, codesize(), 0x00)
        }
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
