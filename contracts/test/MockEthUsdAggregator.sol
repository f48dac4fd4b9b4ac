// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title MockEthUsdAggregator
/// @notice TEST DOUBLE of Chainlink's ETH/USD aggregator (the `AggregatorV3Interface` reads the MCP front makes),
/// for local chains only: anyone sets the answer and its update time. Never deploy it on a live network.
contract MockEthUsdAggregator {
    /// @dev Chainlink's ETH/USD feeds answer with 8 decimals.
    uint8 public constant decimals = 8;

    uint80 private _roundId;
    int256 private _answer;
    uint256 private _updatedAt;

    /// @notice A new round was set.
    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);

    constructor(int256 answer) {
        setAnswer(answer, block.timestamp);
    }

    /// @notice Sets the next round's answer and update time (a stale or non-positive answer is a test case).
    function setAnswer(int256 answer, uint256 updatedAt) public {
        _roundId += 1;
        _answer = answer;
        _updatedAt = updatedAt;
        emit AnswerUpdated(answer, _roundId, updatedAt);
    }

    /// @notice The latest round, as Chainlink's aggregators return it.
    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        return (_roundId, _answer, _updatedAt, _updatedAt, _roundId);
    }
}
