"""Tests run offline, on local chains: there ape-etherscan must not ask the internet which chains it serves.

ape-etherscan (installed for `ape run deploy --publish`) answers Ape's question "which explorer serves this
chain?" for any chain it has no entry for, local ones included, by fetching Etherscan's chain list. Ape asks it
whenever it meets a contract whose type it does not know: `receipt.events` on a receipt with a USDC log,
`Contract(address)`. Offline, that fetch raises instead of answering "none". In the tests Etherscan serves no
chain, which is the answer it would give for a local chain anyway. Scripts outside the tests decode receipts by
event ABI (`receipt.decode_logs(nft.ImageRequested)`) or give the contract type (`fetch_from_explorer=False`).
"""

from __future__ import annotations

from ape_etherscan.explorer import Etherscan


def _no_chains(cls: type[Etherscan]) -> list[dict]:
    return []


Etherscan.get_supported_chains = classmethod(_no_chains)  # type: ignore[method-assign,assignment]
