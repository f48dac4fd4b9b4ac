"""Headless Debian Chromium driven by Playwright, with a test wallet: an injected EIP-1193 provider that starts on
another chain (so the page must switch, then add, the chain) and forwards to anvil's unlocked accounts."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from playwright.async_api import Page, async_playwright

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


@contextlib.asynccontextmanager
async def wallet_page(anvil_url: str, chain_id: int, account: str) -> AsyncIterator[Page]:
    async with async_playwright() as playwright, httpx.AsyncClient(timeout=30) as rpc:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = await browser.new_page(viewport={"width": 900, "height": 1100})

        async def forward(method: str, params: list) -> object:
            reply = await rpc.post(anvil_url, json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
            body = reply.json()
            if "error" in body:
                raise RuntimeError(body["error"].get("message", str(body["error"])))
            return body["result"]

        await page.expose_function("__anvilRpc", forward)
        await page.add_init_script(WALLET % {"chain": hex(chain_id), "account": account})
        try:
            yield page
        finally:
            await browser.close()
