// The pay page: connect an injected EIP-1193 wallet, switch or add the chain, send the exact mint the server
// built for this payment (its oracle epoch and tag; the price now plus the rate margin), report the transaction
// hash (the server keeps it, so a reload shows the mint as sent and Pay stays off), then follow the server's status
// document until the image (or the refund). Live regions are written only when their words change.
"use strict";

const boot = JSON.parse(document.getElementById("boot").textContent);
const $ = (id) => document.getElementById(id);
// The happy path, one step each; the current one carries aria-current="step".
const FLOW = [["awaiting", "Pay"], ["sent", "Sent"], ["paid", "Paid"], ["generating", "Making"], ["image", "Done"]];
// Stages off the happy path: [index of the step where it stopped, that step's label, the label of the last step].
const STOPS = {
  expired: [0, "Expired"],
  failed: [0, "Failed"],
  refundable: [3, "Late", "Refund"],
  refunded: [3, "Late", "Refunded"],
};
const TITLES = {
  awaiting: "Pay for one image", sent: "Payment sent", paid: "Paid", generating: "Making your image",
  image: "Your image", refundable: "Refund available", refunded: "Refunded", expired: "Link expired",
  failed: "Payment failed", missing: "Not found",
};
let doc = null;
let busy = false;
let sentHash = null; // the mint this page sent, until the server's document shows it
let refundSent = false;
let focusOwner = null; // a button that had focus when it disabled itself (Chromium then blurs it to <body>)

function text(id, value) {
  const words = value == null ? "–" : String(value);
  if ($(id).textContent !== words) $(id).textContent = words; // a live region announces changes only
}
function show(id, visible) { if ($(id).hidden === visible) $(id).hidden = !visible; }
function link(id, href) { if ($(id).getAttribute("href") !== href) $(id).setAttribute("href", href); }

function localTime(seconds) {
  return new Date(seconds * 1000).toLocaleString(undefined, {
    weekday: "short", hour: "2-digit", minute: "2-digit", timeZoneName: "short",
  });
}
function minutes(seconds) {
  const m = Math.max(1, Math.round(seconds / 60));
  return `${m} minute${m === 1 ? "" : "s"}`;
}

function stageOf(next) {
  if (next.stage === "awaiting" && sentHash) return "sent";
  return next.stage;
}

function stageWords(stage, next) {
  const order = next.order, token = next.token;
  const confirmations = order ? order.confirmations : 0;
  switch (stage) {
    case "awaiting": return "Waiting for your payment.";
    case "sent": return confirmations > 0
      ? `Payment sent: waiting for ${confirmations} confirmations of your transaction. Do not pay again.`
      : "Payment sent: waiting for it to be confirmed. Do not pay again.";
    case "paid": return "Paid. Your image is being made…";
    case "generating": return `Paid. Your image is being made; it is due by ${localTime(token.deadline)}.`;
    case "image": return "Done: here is your image.";
    case "refundable": return "The image was not made in time. You can get your money back.";
    case "refunded": return "Refunded: the money went back to the token's holder (you, the buyer).";
    case "expired": return order && order.mint_tx
      ? "This payment link expired while your payment was on its way. If it lands, its token shows here."
      : "This payment link expired and nothing was charged. To buy the image, ask the assistant you were " +
        "using for a new payment link.";
    case "failed": return "This payment did not go through.";
    default: return stage;
  }
}

function renderSteps(stage) {
  const stop = STOPS[stage];
  const at = stop ? stop[0] : FLOW.findIndex(([name]) => name === stage);
  const labels = FLOW.map(([, label]) => label);
  if (stop) labels[at] = stop[1];
  if (stop && stop[2]) labels[FLOW.length - 1] = stop[2];
  const states = FLOW.map((_, i) => {
    if (stage === "image") return "done";
    if (stage === "refunded") return i === at ? "bad" : i === FLOW.length - 1 || i < at ? "done" : "";
    if (stage === "refundable") return i === at ? "bad" : i === FLOW.length - 1 ? "now" : i < at ? "done" : "";
    if (stop) return i === at ? "bad" : i < at ? "done" : "";
    return i < at ? "done" : i === at ? "now" : "";
  });
  const current = stage === "refundable" ? FLOW.length - 1 : stage === "image" || stage === "refunded"
    ? FLOW.length - 1 : at;
  const list = $("steps");
  if (list.children.length !== FLOW.length) {
    list.replaceChildren(...FLOW.map(() => document.createElement("li")));
  }
  FLOW.forEach((_, i) => {
    const li = list.children[i];
    if (li.textContent !== labels[i]) li.textContent = labels[i];
    if (li.className !== states[i]) li.className = states[i];
    if (i === current) li.setAttribute("aria-current", "step");
    else li.removeAttribute("aria-current");
  });
}

function renderOrder(order, stage) {
  show("terms", true);
  text("prompt", order.prompt);
  text("tier", order.tier_name.charAt(0).toUpperCase() + order.tier_name.slice(1));
  text("tier-number", `${order.tier} (${order.tier_name})`);
  text("aspect", order.aspect_ratio);
  text("price-usd", order.price_usd);
  text("oracle-time", `Your image is made within ${minutes(order.oracle_seconds)} of your payment; if it is ` +
    "not, you can take your money back.");
  text("epoch", order.oracle_epoch);
  text("expires-exact", localTime(order.expires_at));
  if (order.price_eth) {
    text("price-eth", `(about ${order.price_eth} ETH at ${order.usd_per_eth.replace("/ETH", " per ETH")})`);
    text("margin", `Your wallet sends up to ${order.max_eth} ETH: ${order.margin_percent}% above the price now, in ` +
      "case the rate moves before your payment is confirmed. The contract charges the dollar price at the " +
      "rate of that block (Chainlink's ETH/USD price) and returns the rest in the same transaction. Network fees " +
      "are extra.");
  } else {
    text("price-eth", `(${order.eth_unavailable})`);
    text("margin", "");
  }
  text("expires", stage === "awaiting"
    ? `Open for about ${minutes(order.seconds_left)} more (until ${localTime(order.expires_at)}).`
    : stage === "sent" ? "Used: your payment was sent." : order.state === "paid" ? "Used: you paid."
      : `No longer open (${order.state}).`);
  const open = stage === "awaiting" && order.mint !== null;
  show("pay", open);
  $("pay").disabled = busy || !open;
  const phone = Boolean(boot.qr_url && open && order.eip681);
  show("phone", phone);
  if (phone) {
    if (!$("qr").getAttribute("src")) $("qr").src = boot.qr_url;
    text("eip681", order.eip681);
    link("wallet-link", order.eip681);
  }
  show("renewed", Boolean(order.renewed_by));
  if (order.renewed_by) link("renewed-link", order.renewed_by);
  show("notice", Boolean(order.notice_token_url) && (stage === "awaiting" || stage === "expired"));
  if (order.notice_token_url) {
    const number = order.notice_token_url.split("/").pop();
    text("notice-token", number);
    text("notice-text", order.notice);
    link("notice-token-link", order.notice_token_url);
    text("notice-token-link", `See token ${number}`);
  }
  show("failure", stage === "failed");
  if (stage === "failed") {
    text("failure-plain", order.failure_token_url
      ? "A payment arrived for this link, but not for exactly these terms. It still made a token, and that " +
        "token's image is made as usual."
      : order.mint_tx
        ? "Your payment was refused by the contract (the transaction reverted): it cost only its network fee."
        : "This payment can no longer be made, and nothing was charged.");
    text("failure-text", order.failure || "");
    show("failure-token", Boolean(order.failure_token_url));
    if (order.failure_token_url) {
      link("failure-token-link", order.failure_token_url);
      text("failure-token-link", `See token ${order.failure_token_url.split("/").pop()}`);
    }
  }
}

function renderToken(token) {
  show("token", true);
  text("token-id", `#${token.token_id}`);
  text("escrow-label", token.state === "image" ? "Paid for the image" : "Money held for the image");
  text("escrow", token.refunded ? `${token.escrow} (${token.refunded} refunded)` : token.escrow);
  text("deadline", localTime(token.deadline));
  text("mint-tx", token.mint_tx);
  text("second-tx-label", token.refund_tx ? "Refund transaction" : "Image transaction");
  text("second-tx", token.refund_tx || token.set_image_tx);
  show("result", token.state === "image");
  if (token.state === "image") {
    if (!$("image").getAttribute("src")) $("image").src = token.image_url;
    const prompt = doc.order ? doc.order.prompt : `token ${token.token_id}`;
    if ($("image").alt !== `The generated image: ${prompt}`) $("image").alt = `The generated image: ${prompt}`;
    link("download", token.image_url);
    $("download").setAttribute("download", token.download_name);
    link("gateway-link", token.gateway_url);
    text("token-uri", token.token_uri);
    text("ipfs-uri", token.ipfs_uri);
  }
  show("refund", token.state === "refundable");
  if (token.state === "refunded") text("refund-error", "");
  $("refund").disabled = busy || refundSent;
}

function primaryControl(stage) {
  if (stage === "image") return $("download");
  if (stage === "refundable" && !$("refund").disabled) return $("refund");
  if (stage === "failed" && doc.order && doc.order.failure_token_url) return $("failure-token-link");
  if (doc.order && doc.order.renewed_by) return $("renewed-link");
  return $("stage-text");
}

// A button that hid itself (Pay once sent, Refund once refunded) hands focus on, never to <body>.
function settleFocus(stage) {
  const active = document.activeElement;
  const owner = active && active !== document.body ? active : focusOwner;
  if (!owner) return;
  if (owner.closest("[hidden]")) {
    focusOwner = null;
    primaryControl(stage).focus();
  } else if (owner === focusOwner && !owner.disabled) {
    focusOwner = null;
    if (active === document.body) owner.focus();
  }
}

function holdFocus(button) {
  if (document.activeElement === button) focusOwner = button;
}

function render(next) {
  doc = next;
  if (doc.order && doc.order.mint_tx) sentHash = null; // the server has it: its document decides from now on
  const stage = stageOf(doc);
  text("chain", `${doc.chain.name} (chain id ${doc.chain.id})`);
  text("contract", doc.contract);
  renderSteps(stage);
  text("stage-text", stageWords(stage, doc));
  if (document.title !== `${TITLES[stage] || stage} · GenImNFT`) document.title = `${TITLES[stage] || stage} · GenImNFT`;
  if (doc.order) renderOrder(doc.order, stage);
  if (doc.token) renderToken(doc.token);
  settleFocus(stage);
}

function renderMissing(message) {
  show("steps", false);
  text("stage-text", message);
  document.title = `${TITLES.missing} · GenImNFT`;
}

async function poll() {
  try {
    const reply = await fetch(boot.status_url, { cache: "no-store" });
    if (reply.ok) {
      render(await reply.json());
      text("note", "");
    } else if (!doc) {
      renderMissing((await reply.json()).error || `status ${reply.status}`);
    }
  } catch (error) {
    text("note", "The server is unreachable; retrying…");
  }
  setTimeout(poll, 1000);
}

async function connect() {
  const wallet = window.ethereum;
  if (!wallet) {
    throw new Error("No browser wallet found on this device. On a phone, tap “Open in a wallet app” below, or " +
      "scan the QR code with a wallet app.");
  }
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

// The server's latest word on this payment: Pay never sends a second mint for a payment that has one pending.
async function stillOpen() {
  const reply = await fetch(boot.status_url, { cache: "no-store" });
  if (!reply.ok) return false;
  render(await reply.json());
  return doc.stage === "awaiting" && !sentHash && doc.order.mint !== null;
}

async function pay() {
  if (busy) return;
  busy = true;
  holdFocus($("pay"));
  $("pay").disabled = true;
  text("pay-error", "");
  try {
    if (!(await stillOpen())) return;
    const from = await connect();
    const mint = doc.order.mint;
    const hash = await window.ethereum.request({
      method: "eth_sendTransaction", params: [{ from, to: mint.to, value: mint.value, data: mint.data }],
    });
    sentHash = hash;
    await report(hash);
  } catch (error) {
    text("pay-error", `Not paid: ${error.message || error}`);
  } finally {
    busy = false;
    if (doc) render(doc);
  }
}

// The server keeps the hash (a reload shows the mint as sent) and, if the mint reverts, says why and what it cost.
async function report(hash) {
  try {
    await fetch(`${boot.status_url}/mint`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ tx: hash }),
    });
  } catch (error) {
    text("note", "The server did not hear about your payment; it still sees it once it is confirmed.");
  }
}

async function refund() {
  if (busy || refundSent) return;
  busy = true;
  holdFocus($("refund"));
  $("refund").disabled = true;
  text("refund-error", "");
  try {
    const from = await connect();
    const call = doc.token.refund;
    await window.ethereum.request({
      method: "eth_sendTransaction", params: [{ from, to: call.to, data: call.data, value: "0x0" }],
    });
    refundSent = true;
    text("refund-error", "Refund sent: waiting for it to be confirmed.");
  } catch (error) {
    text("refund-error", `Not refunded: ${error.message || error}`);
  } finally {
    busy = false;
    if (doc) render(doc);
  }
}

$("qr").addEventListener("error", () => {
  $("qr").hidden = true; // a prompt too long for one QR code: the wallet link still works
});
$("pay").addEventListener("click", pay);
$("refund").addEventListener("click", refund);
poll();
