"""GenImNFT's lower floor, shared by the oracle daemon and the paid MCP front: the contract's ABI, its reads
and events, metadata and content identifiers, and the IPFS client. It imports neither of them."""
