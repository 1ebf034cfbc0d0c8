// Dead deliveries: why each died; an admin retries one, or all of a forwarder's.
import { call, get, session } from "./api.js";
import { debounce, deploymentHref, el, when } from "./dom.js";
import { retryButton } from "./view-deployment.js";

export async function dead(root, live) {
  const message = el("p", { class: "notice", role: "status" });
  const body = el("div");
  root.append(el("h1", { tabindex: "-1" }, "Dead deliveries"), message, body);
  let shown = new Set();
  async function load() {
    const list = await get("/deliveries?status=dead&limit=1000");
    shown = new Set(list.map((d) => d.id));
    render(body, list, message, load);
  }
  await load();
  // Read again when a delivery dies, or when one on the list moves on (a retry).
  const refresh = debounce(load, 500);
  live((type, data) => {
    if (type === "delivery" && (data.outcome === "dead" || shown.has(data.delivery_id))) refresh();
  });
}

function render(node, list, message, reload) {
  if (list.length === 0) {
    node.replaceChildren(el("p", { class: "muted" }, "No dead delivery."));
    return;
  }
  const byForwarder = new Map();
  for (const d of list) byForwarder.set(d.forwarder, [...(byForwarder.get(d.forwarder) || []), d]);
  const bulk = session.info?.admin
    ? el("p", { class: "actions" }, [...byForwarder].map(([name, items]) => retryAll(name, items, message, reload)))
    : null;
  const head = el("tr", {}, ["Forwarder", "Deployment", "Event", "Attempts", "Status code", "Why", "Since", ""]
    .map((h) => el("th", { scope: "col" }, h)));
  const rows = list.map((d) => el("tr", { "data-delivery": d.id, "data-forwarder": d.forwarder },
    el("td", {}, d.forwarder),
    el("td", {}, d.deployment_id ? el("a", { href: deploymentHref(d.component, d.deployment_id) }, d.component) : d.component),
    el("td", {}, d.event_type), el("td", {}, String(d.attempts)),
    el("td", {}, d.last_status_code ?? "—"), el("td", { class: "excerpt why" }, d.last_error ?? "—"),
    el("td", {}, when(d.updated_at)),
    el("td", {}, session.info?.admin ? retryButton(d, message, reload) : "")));
  node.replaceChildren(bulk || "", el("div", { class: "table-wrap" },
    el("table", {}, el("thead", {}, head), el("tbody", {}, rows))));
}

function retryAll(name, items, message, reload) {
  const button = el("button", { type: "button", "data-retry-all": name }, `Retry all ${items.length} of ${name}`);
  button.addEventListener("click", async () => {
    button.disabled = true;
    let failed = 0;
    for (const d of items) {
      try { await call("POST", `/deliveries/${encodeURIComponent(d.id)}/retry`); } catch { failed += 1; }
    }
    message.textContent = failed ? `${failed} of ${items.length} retries refused.` : `${items.length} retries of ${name} queued.`;
    await reload();
  });
  return button;
}
