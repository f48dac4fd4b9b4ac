"""The paid MCP front: image tools whose payment is the buyer's own GenImNFT mint."""
