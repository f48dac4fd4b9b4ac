"""The toolchain's own promises: the README's commands work in any order and leave the tree as they found it.

- Ape unpacks its Solidity dependencies into contracts/.cache; forge (build, test, fmt) and slither skip it.
- `make setup` installs package-lock.json as it is (`npm ci`), and nothing in it comes from outside the registry.
- Each suite has its own make target; a broker leaves no process behind (epmd included).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import pytest

from genim_devnet import broker
from tests.leftovers import MARK, leftovers
from tests.services import ROOT

UNFORMATTED_AND_BROKEN = "pragma solidity ^0.8.0;\ncontract   Broken{function f( ) public{ this is not solidity }}\n"
OURS = "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.28;\n\ncontract Ours {\n    uint256 public x;\n}\n"


def test_forge_skips_apes_contracts_cache(tmp_path):
    """What `make demo` leaves in contracts/.cache (Ape's dependency copies) is neither formatted nor built."""
    shutil.copy(ROOT / "foundry.toml", tmp_path / "foundry.toml")
    for shared in ("toolchain", "node_modules"):
        (tmp_path / shared).symlink_to(ROOT / shared)
    (tmp_path / "contracts" / ".cache" / "dep" / "1.0").mkdir(parents=True)
    (tmp_path / "tests" / "foundry").mkdir(parents=True)
    (tmp_path / "contracts" / "Ours.sol").write_text(OURS)
    (tmp_path / "contracts" / ".cache" / "dep" / "1.0" / "Broken.sol").write_text(UNFORMATTED_AND_BROKEN)

    def forge(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["forge", *args], cwd=tmp_path, capture_output=True, text=True, timeout=300)

    fmt = forge("fmt", "--check")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    build = forge("build")
    assert build.returncode == 0, build.stdout + build.stderr
    assert (tmp_path / "out" / "Ours.sol").is_dir() and not (tmp_path / "out" / "Broken.sol").exists()


def test_lock_is_installed_as_is_from_the_registry_only():
    """`npm ci` needs the lock in step with package.json; no git or tarball URL may creep back in (js-ipfs's
    CLI package once pulled a GitHub tarball through its optional WebRTC transports)."""
    lock = json.loads((ROOT / "package-lock.json").read_text())
    manifest = json.loads((ROOT / "package.json").read_text())
    for section in ("dependencies", "devDependencies"):
        assert lock["packages"][""].get(section) == manifest.get(section), section
    for path, package in lock["packages"].items():
        resolved = package.get("resolved", "")
        assert "://" not in resolved or resolved.startswith("https://registry.npmjs.org/"), path
        for section in ("dependencies", "optionalDependencies"):
            for name, spec in package.get(section, {}).items():
                assert ":" not in spec.replace("npm:", ""), f"{path} takes {name} from {spec}"
    assert "npm ci" in (ROOT / "Makefile").read_text()


@pytest.mark.parametrize(("target", "suite"), [("test-forge", "forge"), ("test-ape", "ape"), ("lint", "lint")])
def test_each_suite_has_a_make_target(target, suite):
    dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True, check=True)
    assert f"tests/run_all.sh {suite}" in dry.stdout


@pytest.mark.skipif(not broker.available(), reason="rabbitmq-server is not installed (make setup)")
def test_broker_leaves_no_process(monkeypatch):
    """Stopped after a crash and a restart, a throwaway broker leaves nothing running: no beam, no epmd."""
    mark = uuid.uuid4().hex
    monkeypatch.setenv(MARK, mark)
    with broker.rabbitmq() as node:
        assert leftovers(mark, grace=0), "the broker's processes carry the session mark"
        node.kill9()
        node.start()
    assert leftovers(mark) == {}
