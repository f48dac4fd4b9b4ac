// The pay page: connect an injected EIP-1193 wallet, switch or add the chain, send the exact mint the server
// built for this payment (its oracle epoch and tag; the price now plus the rate margin), report the transaction
// hash so that a reverted mint is reported as such, then follow the server's status document until the image (or
// the refund).
"use strict";

const boot = JSON.parse(document.getElementById("boot").textContent);
const $ = (id) => document.getElementById(id);
const STAGES = ["awaiting", "paid", "generating", "image"];
const WORDS = {
  awaiting: "Waiting for your payment.",
  paid: "Paid: your mint is confirmed.",
  generating: "Paid. The oracle is generating your image…",
  image: "Done: your image is set on-chain and pinned to IPFS.",
  refundable: "The deadline passed without an image: refund the escrow to the token's holder.",
  refunded: "Refunded: the escrow went back to the token's holder.",
  expired: "This payment link expired. Ask for a new one (call the tool again); nothing was charged.",
  failed: "This payment failed.",
};
let doc = null;
let busy = false;
const sent = { Mint: false, Refund: false }; // one transaction of each kind per page: never pay twice

function text(id, value) { $(id).textContent = value == null ? "–" : String(value); }
function clear(id) { $(id).textContent = ""; }
function note(message) { $("note").textContent = message || ""; }

function renderSteps(stage) {
  const at = STAGES.indexOf(stage);
  for (const li of $("steps").children) {
    const i = STAGES.indexOf(li.dataset.stage);
    li.className = at < 0 ? "" : i < at || stage === "image" ? "done" : i === at ? "now" : "";
  }
}

function renderOrder(order) {
  $("terms").hidden = false;
  text("prompt", order.prompt);
  text("tier", `${order.tier_name} (tier ${order.tier})`);
  text("aspect", order.aspect_ratio);
  text("price-usd", order.price_usd);
  if (order.price_eth) {
    text("price-eth", `(${order.price_eth} ETH at ${order.usd_per_eth})`);
    text("margin", `Your wallet sends up to ${order.max_eth} ETH: ${order.margin_percent}% above the price now, in ` +
      "case the rate moves before your mint is confirmed. The contract charges the dollar price at the rate of " +
      "that block and returns the rest in the same transaction. Network fees are extra.");
  } else {
    text("price-eth", `(${order.eth_unavailable})`);
    clear("margin");
  }
  text("expires", order.state === "awaiting" ? `open, ${order.seconds_left} s left` : order.state);
  const open = order.state === "awaiting" && !order.mint_tx && !sent.Mint && order.mint !== null;
  $("pay").disabled = busy || !open;
  $("pay").hidden = order.state !== "awaiting";
  if (boot.qr_url && order.state === "awaiting") {
    $("phone").hidden = false;
    if (!$("qr").getAttribute("src")) $("qr").src = boot.qr_url;
    text("eip681", order.eip681);
  } else {
    $("phone").hidden = true;
  }
  if (order.failure) note(order.failure);
  $("renewed").hidden = !order.renewed_by;
  if (order.renewed_by) $("renewed-link").href = order.renewed_by;
}

function renderToken(token) {
  $("token").hidden = false;
  text("token-id", `#${token.token_id}`);
  text("escrow", token.escrow);
  text("deadline", new Date(token.deadline * 1000).toISOString().replace(".000", ""));
  text("mint-tx", token.mint_tx);
  text("set-tx", token.set_image_tx || token.refund_tx);
  if (token.state === "image") {
    $("figure").hidden = false;
    if (!$("image").getAttribute("src")) $("image").src = token.image_url;
    text("ipfs-link", token.ipfs_uri);
    $("ipfs-link").href = token.ipfs_uri;
    $("gateway-link").href = token.gateway_url;
    text("token-uri", token.token_uri);
  }
  $("refund").hidden = token.state !== "refundable";
  $("refund").disabled = busy || sent.Refund;
}

function render(next) {
  doc = next;
  text("chain", `${doc.chain.name} (chain id ${doc.chain.id})`);
  text("contract", doc.contract);
  renderSteps(doc.stage);
  text("stage-text", WORDS[doc.stage] || doc.stage);
  if (doc.stage !== "awaiting" && doc.stage !== "refundable") clear("sent");
  if (doc.order) renderOrder(doc.order);
  if (doc.token) renderToken(doc.token);
}

async function poll() {
  try {
    const reply = await fetch(boot.status_url, { cache: "no-store" });
    if (reply.ok) render(await reply.json());
    else if (!doc) note((await reply.json()).error || `status ${reply.status}`);
  } catch (error) {
    note("The server is unreachable; retrying…");
  }
  setTimeout(poll, 1000);
}

async function connect() {
  const wallet = window.ethereum;
  if (!wallet) throw new Error("No browser wallet found. Scan the QR code with a phone wallet instead.");
  const [from] = await wallet.request({ method: "eth_requestAccounts" });
  const current = await wallet.request({ method: "eth_chainId" });
  if (parseInt(current, 16) !== doc.chain.id) {
    try {
      await wallet.request({ method: "wallet_switchEthereumChain", params: [{ chainId: doc.chain.id_hex }] });
    } catch (error) {
      if (error.code !== 4902 || !doc.chain.rpc) throw error;
      await wallet.request({
        method: "wallet_addEthereumChain",
        params: [{
          chainId: doc.chain.id_hex,
          chainName: doc.chain.name,
          rpcUrls: [doc.chain.rpc],
          nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
          blockExplorerUrls: doc.chain.explorer ? [doc.chain.explorer] : undefined,
        }],
      });
    }
  }
  return from;
}

async function send(transaction, what) {
  busy = true;
  note("");
  try {
    const from = await connect();
    const hash = await window.ethereum.request({ method: "eth_sendTransaction", params: [{ from, ...transaction }] });
    sent[what] = true;
    text("sent", `${what} sent in transaction ${hash}; waiting for it to be confirmed…`);
    if (what === "Mint") await report(hash);
  } catch (error) {
    note(`${what} not sent: ${error.message || error}`);
  } finally {
    busy = false;
  }
}

// The server checks that this is the payment's mint and, if it reverts, says why and what it cost (gas only).
async function report(hash) {
  try {
    await fetch(`${boot.status_url}/mint`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ tx: hash }),
    });
  } catch (error) {
    note("The server did not hear about your transaction; it still sees the mint once it is confirmed.");
  }
}

$("qr").addEventListener("error", () => {
  $("qr").hidden = true; // a prompt too long for one QR code: the URI below still works
});
$("pay").addEventListener("click", () => {
  const mint = doc.order.mint;
  return send({ to: mint.to, value: mint.value, data: mint.data }, "Mint");
});
$("refund").addEventListener("click", () => {
  const refund = doc.token.refund;
  return send({ to: refund.to, data: refund.data, value: "0x0" }, "Refund");
});
poll();
