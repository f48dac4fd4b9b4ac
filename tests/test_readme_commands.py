"""The README's top commands in the order a newcomer might run them: `make demo` and `make demo-mcp` first,
then what the demos' Ape cache once broke in 0.3 s (formatting over contracts/, a lone forge invariant run that
compiled Ape's 314 dependency copies), and the tree is left as it was found. CI runs `make test` alone, so
this test is where the demos-then-tests order is checked on every run."""

from __future__ import annotations

import os
import subprocess

from tests.services import ROOT


def run(*command: str, timeout: float) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("MAKE")}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def tree_state() -> str:
    return run("git", "status", "--porcelain", "--untracked-files=all", timeout=60).stdout


def test_demos_then_checks_leave_the_tree_as_it_was():
    before = tree_state()
    for command, timeout in ((("make", "demo"), 600), (("make", "demo-mcp"), 600)):
        done = run(*command, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    fmt = run("forge", "fmt", "--check", timeout=300)
    assert fmt.returncode == 0, f"forge fmt --check after the demos:\n{fmt.stdout[-3000:]}{fmt.stderr[-3000:]}"
    lone = run("forge", "test", "--match-test", "invariant_ConsentAtMint", timeout=600)
    assert lone.returncode == 0, f"a lone forge test after the demos:\n{lone.stdout[-3000:]}{lone.stderr[-3000:]}"
    ruff = run("ruff", "check", ".", timeout=120)
    assert ruff.returncode == 0, ruff.stdout[-3000:]
    assert tree_state() == before, "the demos or the checks changed the tree"
