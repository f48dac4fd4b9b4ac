"""The daemon ships the contract's ABI; it must be the one the compiler produces from contracts/."""

import json
from pathlib import Path

ABI_FILE = Path(__file__).resolve().parents[2] / "genimnft" / "GenImNFT.abi.json"


def _canonical(entries: list[dict]) -> list[str]:
    return sorted(json.dumps(entry, sort_keys=True) for entry in entries)


def test_shipped_abi_matches_compiled_contract(project):
    compiled = [
        entry.model_dump(by_alias=True, mode="json", exclude_none=True) for entry in project.GenImNFT.contract_type.abi
    ]
    shipped = json.loads(ABI_FILE.read_text())
    names = lambda entries: sorted((e["type"], e.get("name", "")) for e in entries)  # noqa: E731
    assert names(shipped) == names(compiled)
    for entry in shipped:
        match = [c for c in compiled if (c["type"], c.get("name")) == (entry["type"], entry.get("name"))]
        assert [i["type"] for i in entry.get("inputs", [])] in [[i["type"] for i in c.get("inputs", [])] for c in match]
