"""Test and demo support, not product code: local anvil and IPFS nodes, the tiny random-weight model."""
