"""GenImNFT oracle daemon: follows paid image requests, generates, pins to IPFS, sets each image once."""
