// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/shared/mocks/MockV3Aggregator.sol";
import {VM} from "./Test.sol";

/// @dev Chainlink's real MockV3Aggregator as the ETH/USD feed (8 decimals) and the L2 sequencer uptime feed
/// (0 decimals; answer 0 = up, 1 = down; `startedAt` = when the status last changed).
library Feeds {
    uint8 internal constant USD_DECIMALS = 8;
    int256 internal constant USD = 1e8; // one dollar as an ETH/USD answer: 3000 * Feeds.USD
    uint256 internal constant GRACE_PERIOD = 3600; // Chainlink's L2 guide: no prices this long after a restart
    int256 internal constant UP = 0;
    int256 internal constant DOWN = 1;
    /// @dev A realistic time: forge starts at timestamp 1, where "two hours ago" does not exist.
    uint256 internal constant START = 1_750_000_000;

    /// @dev ETH/USD at `answer` (8 decimals, e.g. 3000 * Feeds.USD), updated now. Warps to START if earlier.
    function deployEthUsd(int256 answer) internal returns (MockV3Aggregator feed) {
        _realisticTime();
        feed = new MockV3Aggregator(USD_DECIMALS, answer);
    }

    /// @dev A sequencer uptime feed reporting up since twice the grace period ago. Warps to START if earlier.
    function deploySequencer() internal returns (MockV3Aggregator feed) {
        _realisticTime();
        feed = new MockV3Aggregator(0, UP);
        sequencerUp(feed, 2 * GRACE_PERIOD);
    }

    /// @dev A new round at `answer`, updated now.
    function setPrice(MockV3Aggregator feed, int256 answer) internal {
        _round(feed, answer, block.timestamp);
    }

    /// @dev Keeps the answer but dates the round `age` seconds ago.
    function makeStale(MockV3Aggregator feed, uint256 age) internal {
        _round(feed, feed.latestAnswer(), block.timestamp - age);
    }

    /// @dev The sequencer went down now.
    function sequencerDown(MockV3Aggregator feed) internal {
        _round(feed, DOWN, block.timestamp);
    }

    /// @dev The sequencer is up, since `since` seconds ago (<= GRACE_PERIOD: still inside the grace period).
    function sequencerUp(MockV3Aggregator feed, uint256 since) internal {
        _round(feed, UP, block.timestamp - since);
    }

    function _round(MockV3Aggregator feed, int256 answer, uint256 at) private {
        feed.updateRoundData(uint80(feed.latestRound() + 1), answer, at, at);
    }

    function _realisticTime() private {
        if (block.timestamp < START) VM.warp(START);
    }
}
