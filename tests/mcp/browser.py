"""Headless Debian Chromium driven by Playwright, with a test wallet: an injected EIP-1193 provider that starts on
another chain (so the page must switch, then add, the chain) and forwards to anvil's unlocked accounts. `audit`
runs axe-core (npm) on the page at a desktop and a phone width, checks nothing scrolls sideways, and keeps a
screenshot of each."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
from playwright.async_api import Page, async_playwright

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
WIDTHS = (1280, 390)  # a desktop and a phone (an iPhone's CSS width)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]  # fmt: skip
WALLET = """
(() => {
  const target = "%(chain)s", account = "%(account)s";
  const known = new Set(["0xa"]);
  let chainId = "0xa";  // the wallet starts on OP Mainnet
  window.__walletCalls = [];
  window.ethereum = {
    isTestWallet: true,
    async request({ method, params }) {
      window.__walletCalls.push({ method, params });
      if (method === "eth_chainId") return chainId;
      if (method === "eth_requestAccounts" || method === "eth_accounts") return [account];
      if (method === "wallet_switchEthereumChain") {
        if (!known.has(params[0].chainId)) throw Object.assign(new Error("Unrecognized chain"), { code: 4902 });
        chainId = params[0].chainId;
        return null;
      }
      if (method === "wallet_addEthereumChain") {
        known.add(params[0].chainId);
        chainId = params[0].chainId;
        return null;
      }
      if (chainId !== target) throw Object.assign(new Error("wallet is on another chain"), { code: 4901 });
      return await window.__anvilRpc(method, params || []);
    },
  };
})();
"""


@dataclass(frozen=True)
class Wallet:
    anvil_url: str
    chain_id: int
    account: str


@contextlib.asynccontextmanager
async def browser_page(
    wallet: Wallet | None = None,
    width: int = 900,
    javascript: bool = True,
    timezone: str | None = None,
    audited: bool = False,
) -> AsyncIterator[Page]:
    """A page in a fresh headless Chromium: with the test wallet injected, or none (most phones); `audited` lets
    `audit` add axe-core's script despite the page's Content-Security-Policy."""
    async with async_playwright() as playwright, httpx.AsyncClient(timeout=30) as rpc:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = await browser.new_context(
            viewport={"width": width, "height": 1100},
            java_script_enabled=javascript,
            timezone_id=timezone,
            locale="en-US",
            bypass_csp=audited,
        )
        page = await context.new_page()
        if wallet is not None:

            async def forward(method: str, params: list) -> object:
                body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
                answer = (await rpc.post(wallet.anvil_url, json=body)).json()
                if "error" in answer:
                    raise RuntimeError(answer["error"].get("message", str(answer["error"])))
                return answer["result"]

            await page.expose_function("__anvilRpc", forward)
            await page.add_init_script(WALLET % {"chain": hex(wallet.chain_id), "account": wallet.account})
        try:
            yield page
        finally:
            await browser.close()


def wallet_page(
    anvil_url: str, chain_id: int, account: str, **options: object
) -> contextlib.AbstractAsyncContextManager[Page]:
    """A page with the test wallet on `account`."""
    return browser_page(Wallet(anvil_url, chain_id, account), **options)  # type: ignore[arg-type]


AXE_RUN = """() => axe.run(document).then(result => result.violations.map(v => ({
  id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(" ") + ": " + n.failureSummary),
})))"""


async def audit(page: Page, state: str, shots: Path | None = None) -> None:
    """axe-core finds no violation at either width, with the exact terms folded and unfolded, the page does not scroll
    sideways, and (with `shots`) a full screenshot of each width is kept as <state>-<width>.png. The page needs
    `browser_page(audited=True)`."""
    for width in WIDTHS:
        await page.set_viewport_size({"width": width, "height": 900})
        await page.wait_for_timeout(150)  # a layout pass at the new width
        if not await page.evaluate("() => typeof window.axe !== 'undefined'"):
            await page.add_script_tag(path=str(AXE))
        for opened in (False, True):  # the exact terms folded away, then every <details> open
            violations = await page.evaluate(AXE_RUN)
            assert violations == [], f"{state} at {width} px (details open: {opened}): {violations}"
            sideways = await page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
            assert sideways <= 0, f"{state} at {width} px (details open: {opened}) scrolls {sideways} px sideways"
            if shots is not None and not opened:
                shots.mkdir(parents=True, exist_ok=True)
                await page.screenshot(path=str(shots / f"{state}-{width}.png"), full_page=True)
            await page.evaluate("open => document.querySelectorAll('details').forEach(d => { d.open = open; })", True)
        await page.evaluate("open => document.querySelectorAll('details').forEach(d => { d.open = open; })", False)
