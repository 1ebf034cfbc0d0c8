// Component: its deployment history, newest first, paged and filtered, with strips.
import { call, nextPage, summaries } from "./api.js";
import { debounce, deploymentHref, el, status, strip, when, yieldToBrowser } from "./dom.js";

// Rows drawn per task: a long history never blocks the page for long.
const CHUNK = 100;

const STATUSES = ["", "queued", "building", "pushing", "starting", "success", "build-error",
  "crashed-error", "timeout-error", "aborted"];

export async function component(root, live, [slug], params) {
  const query = new URLSearchParams();
  for (const name of ["stage", "status"]) if (params.get(name)) query.set(name, params.get(name));
  for (const name of ["since", "until"]) {
    if (params.get(name)) query.set(name, new Date(params.get(name)).toISOString());
  }
  const limit = Math.min(Math.max(Number(params.get("limit")) || 100, 1), 500);
  query.set("limit", String(limit));
  const body = el("tbody");
  const more = el("button", { type: "button", hidden: true }, "Load more");
  const count = el("p", { class: "muted", role: "status" });
  root.append(
    el("h1", { tabindex: "-1" }, slug),
    filters(slug, params),
    el("div", { class: "table-wrap" }, el("table", { class: "history" },
      el("thead", {}, el("tr", {}, ["When", "Version", "Stage", "Status", "Targets"].map((h) => el("th", { scope: "col" }, h)))),
      body)),
    count, more);

  const shown = new Map();  // deployment id -> row
  let next = `/components/${encodeURIComponent(slug)}/deployments?${query}`;
  async function load() {
    more.disabled = true;
    const { data, response } = await call("GET", next);
    next = nextPage(response);
    const strips = data.length ? await summaries(data.map((d) => d.id)) : new Map();
    for (let i = 0; i < data.length; i += CHUNK) {
      const fragment = document.createDocumentFragment();
      for (const d of data.slice(i, i + CHUNK)) fragment.append(row(d, strips.get(d.id), shown));
      body.append(fragment);
      if (i + CHUNK < data.length) await yieldToBrowser();
    }
    more.hidden = next === null;
    more.disabled = false;
    count.textContent = `${shown.size} deployment${shown.size === 1 ? "" : "s"}${next ? " (more below)" : ""}`;
  }
  more.addEventListener("click", load);
  await load();

  const unfiltered = [...query.keys()].every((k) => k === "limit");
  const pending = new Set();
  const refresh = debounce(async () => {
    const ids = [...pending].filter((id) => shown.has(id));
    pending.clear();
    if (!ids.length) return;
    const strips = await summaries(ids);
    for (const id of ids) shown.get(id).querySelector("[data-strip]").replaceWith(strip(strips.get(id)));
  }, 250);
  live((type, data) => {
    const d = data.deployment;
    if ((type === "new" || type === "status") && d && d.component === slug && d.kind === "deployment") {
      const old = shown.get(d.id);
      if (old) old.replaceWith(row(d, null, shown));
      else if (type === "new" && unfiltered) body.prepend(row(d, null, shown));
      pending.add(d.id);
      refresh();
    } else if (type === "delivery" && shown.has(data.deployment_id)) {
      pending.add(data.deployment_id);
      refresh();
    }
  });
}

function row(d, deliveries, shown) {
  const tr = el("tr", { "data-deployment": d.id },
    el("td", {}, when(d.finished_at || d.started_at || d.created_at)),
    el("td", {}, el("a", { href: deploymentHref(d.component, d.id) }, d.version)),
    el("td", {}, d.stage ?? "—"),
    el("td", {}, status(d.status)),
    el("td", {}, strip(deliveries)));
  shown.set(d.id, tr);
  return tr;
}

function filters(slug, params) {
  const form = el("form", { class: "filters", "aria-label": "Filters" },
    el("label", {}, "Stage ", el("input", { name: "stage", value: params.get("stage") || "", size: 12 })),
    el("label", {}, "Status ", el("select", { name: "status" },
      STATUSES.map((s) => el("option", { value: s, selected: s === (params.get("status") || "") }, s || "any")))),
    el("label", {}, "Since ", el("input", { type: "datetime-local", name: "since", value: params.get("since") || "" })),
    el("label", {}, "Until ", el("input", { type: "datetime-local", name: "until", value: params.get("until") || "" })),
    el("button", { type: "submit" }, "Filter"));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const [name, value] of new FormData(form)) if (value) chosen.set(name, value);
    location.hash = `#/component/${encodeURIComponent(slug)}${chosen.size ? `?${chosen}` : ""}`;
  });
  return form;
}
