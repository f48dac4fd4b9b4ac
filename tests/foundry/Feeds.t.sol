// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {MockV3Aggregator} from "@chainlink/contracts/src/v0.8/shared/mocks/MockV3Aggregator.sol";
import {Feeds} from "./utils/Feeds.sol";
import {Test} from "./utils/Test.sol";

/// @dev utils/Feeds.sol: Chainlink's MockV3Aggregator reads back what the helpers set.
contract FeedsTest is Test {
    MockV3Aggregator internal ethUsd;
    MockV3Aggregator internal sequencer;

    function setUp() public {
        ethUsd = Feeds.deployEthUsd(3000 * Feeds.USD);
        sequencer = Feeds.deploySequencer();
    }

    function test_DeployedFreshAndUp() public view {
        vm.assertEq(block.timestamp, Feeds.START, "warped to a realistic time");
        (, int256 answer,, uint256 updatedAt,) = ethUsd.latestRoundData();
        vm.assertEq(ethUsd.decimals(), 8, "decimals");
        vm.assertEq(uint256(answer), 300_000_000_000, "3000 USD");
        vm.assertEq(updatedAt, block.timestamp, "fresh");
        (, int256 status, uint256 startedAt,,) = sequencer.latestRoundData();
        vm.assertEq(sequencer.decimals(), 0, "sequencer decimals");
        vm.assertEq(uint256(status), 0, "up");
        vm.assertGt(block.timestamp - startedAt, Feeds.GRACE_PERIOD, "past the grace period");
    }

    function test_Helpers() public {
        Feeds.setPrice(ethUsd, 2500 * Feeds.USD);
        (uint80 round, int256 answer,,,) = ethUsd.latestRoundData();
        vm.assertEq(uint256(answer), 2500e8, "new price");
        vm.assertEq(round, 2, "new round");
        Feeds.makeStale(ethUsd, 2 hours);
        uint256 updatedAt;
        (, answer,, updatedAt,) = ethUsd.latestRoundData();
        vm.assertEq(uint256(answer), 2500e8, "price kept");
        vm.assertEq(block.timestamp - updatedAt, 2 hours, "stale");
        Feeds.sequencerDown(sequencer);
        (, int256 status,,,) = sequencer.latestRoundData();
        vm.assertEq(uint256(status), 1, "down");
        Feeds.sequencerUp(sequencer, 60);
        uint256 startedAt;
        (, status, startedAt,,) = sequencer.latestRoundData();
        vm.assertEq(uint256(status), 0, "up again");
        vm.assertEq(block.timestamp - startedAt, 60, "inside the grace period");
    }
}
