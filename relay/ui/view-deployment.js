// Deployment: fields, status history, the output log (following live), every delivery
// with its attempts; an admin may retry a delivery.
import { call, get, session } from "./api.js";
import { componentHref, debounce, el, link, status, when } from "./dom.js";

const FIELDS = ["version", "stage", "host", "status", "result", "code_name", "commit_sha", "branch",
  "tag", "triggered_by", "started_at", "finished_at", "created_at", "is_live", "is_rollback"];

export async function deployment(root, live, [slug, id]) {
  const base = `/components/${encodeURIComponent(slug)}/deployments/${encodeURIComponent(id)}`;
  const fields = el("div");
  const history = el("ol", { class: "history-list" });
  const log = el("pre", { class: "log", tabindex: "0", "aria-label": "Output log" });
  const deliveries = el("div");
  const message = el("p", { class: "notice", role: "status" });
  root.append(
    el("p", { class: "crumbs" }, link(componentHref(slug), slug), " › deployment"),
    el("h1", { tabindex: "-1" }, "Deployment ", el("code", {}, id)),
    message,
    el("section", {}, el("h2", {}, "Fields"), fields),
    el("section", {}, el("h2", {}, "Status history"), history),
    el("section", {}, el("h2", {}, "Output log"), log),
    el("section", {}, el("h2", {}, "Deliveries"), deliveries));

  async function loadRecord() {
    const [record, changes] = await Promise.all([get(base), get(`${base}/history`)]);
    renderFields(fields, record);
    history.replaceChildren(...changes.map((c) => el("li", {}, when(c.at), " ", c.event_type, " → ",
      c.status ? status(c.status) : "—")));
  }
  async function loadDeliveries() {
    renderDeliveries(deliveries, await get(`${base}/deliveries`), message, loadDeliveries);
  }
  const [, output] = await Promise.all([loadRecord(), call("GET", `${base}/output`, { text: true }), loadDeliveries()]);
  const lines = output.text === "" ? [] : output.text.replace(/\n$/, "").split("\n");
  for (const line of lines) log.append(`${line}\n`);

  const refreshRecord = debounce(loadRecord, 200);
  const refreshDeliveries = debounce(loadDeliveries, 250);
  const show = (more) => {
    const follow = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
    log.append(...more.map((line) => `${line}\n`));
    if (follow) log.scrollTop = log.scrollHeight;
  };
  // Lines that came while the log was read: those it already held end it.
  let early = null;
  live((type, data, isEarly) => {
    if (type === "log" && data.deployment_id === id) {
      if (!isEarly) return show([data.content]);
      if (early === null) {
        early = [];
        queueMicrotask(() => { show(early.slice(overlap(lines, early))); early = null; });
      }
      early.push(data.content);
    } else if ((type === "status" || type === "new") && data.deployment?.id === id) {
      refreshRecord();
    } else if (type === "delivery" && data.deployment_id === id) {
      refreshDeliveries();
    }
  });
}

// How many of `early` (oldest first) the end of `loaded` already shows.
function overlap(loaded, early) {
  for (let n = Math.min(loaded.length, early.length); n > 0; n -= 1) {
    const start = loaded.length - n;
    if (early.slice(0, n).every((line, i) => line === loaded[start + i])) return n;
  }
  return 0;
}

function renderFields(node, record) {
  const rows = FIELDS.filter((f) => record[f] !== null && record[f] !== undefined).map((f) => {
    let value = record[f];
    if (f === "status") value = status(value);
    else if (f.endsWith("_at")) value = when(value);
    else if (typeof value === "boolean") value = value ? "yes" : "no";
    return [el("dt", {}, f.replaceAll("_", " ")), el("dd", { "data-field": f }, value)];
  });
  const meta = Object.keys(record.meta_data || {}).length
    ? [el("dt", {}, "meta data"), el("dd", {}, el("pre", { class: "meta" }, JSON.stringify(record.meta_data, null, 2)))]
    : [];
  node.replaceChildren(el("dl", { class: "fields" }, rows, meta));
}

export function renderDeliveries(node, list, message, reload) {
  if (list.length === 0) {
    node.replaceChildren(el("p", { class: "muted" }, "No deliveries (no forwarder matched)."));
    return;
  }
  node.replaceChildren(...list.map((d) => el("article", { class: `delivery ${d.status}`, "data-delivery": d.id, "data-forwarder": d.forwarder },
    el("h3", {}, d.forwarder, " ", el("span", { class: `badge ${d.status}`, "data-status": d.status }, d.status),
      " ", el("span", { class: "muted" }, d.event_type)),
    d.last_error ? el("p", { class: d.status === "skipped" ? "muted" : "why" },
      d.status === "skipped" ? "Skipped: " : "Last error: ", d.last_error) : null,
    session.info?.admin && d.status === "dead" ? retryButton(d, message, reload) : null,
    attempts(d.attempt_log || []))));
}

export function retryButton(d, message, reload) {
  const button = el("button", { type: "button", class: "retry", "data-retry": d.id }, `Retry ${d.forwarder}`);
  button.addEventListener("click", async () => {
    button.disabled = true;
    try {
      await call("POST", `/deliveries/${encodeURIComponent(d.id)}/retry`);
      message.textContent = `Retry of ${d.forwarder} queued.`;
      await reload();
    } catch (error) {
      message.textContent = `Retry refused: ${error.message}`;
      button.disabled = false;
    }
  });
  return button;
}

function attempts(log) {
  if (log.length === 0) return el("p", { class: "muted" }, "No attempt yet.");
  const head = el("tr", {}, ["#", "When", "Duration", "Status code", "Outcome", "Error", "Answer excerpt"]
    .map((h) => el("th", { scope: "col" }, h)));
  return el("div", { class: "table-wrap" }, el("table", { class: "attempts" }, el("thead", {}, head),
    el("tbody", {}, log.map((a) => el("tr", {},
      el("td", {}, String(a.number)), el("td", {}, when(a.started_at)),
      el("td", {}, `${a.duration_ms.toFixed(0)} ms`), el("td", {}, a.status_code ?? "—"),
      el("td", {}, a.outcome), el("td", { class: "excerpt" }, a.error ?? ""),
      el("td", { class: "excerpt" }, a.response_excerpt ?? ""))))));
}
