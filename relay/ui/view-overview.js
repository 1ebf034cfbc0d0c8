// Overview: components × stages with the live version, status, time and delivery strip,
// and the forwarders' health.
import { get, summaries } from "./api.js";
import { componentHref, debounce, deploymentHref, el, link, status, strip, when } from "./dom.js";

export async function overview(root, live) {
  const [components, forwarders] = await Promise.all([get("/components"), get("/forwarders")]);
  const state = { components, strips: new Map() };
  const grid = el("div", { class: "grid-wrap" });
  const health = el("div", { class: "table-wrap" });
  root.append(
    el("h1", { tabindex: "-1" }, "Overview"),
    el("section", { "aria-labelledby": "grid-title" }, el("h2", { id: "grid-title" }, "Deployments"), grid),
    el("section", { "aria-labelledby": "health-title" }, el("h2", { id: "health-title" }, "Forwarders"), health),
  );
  const ids = () => state.components.flatMap((c) => c.latest_deployments.map((d) => d.id));
  state.strips = await summaries(ids());
  renderGrid(grid, state);
  renderHealth(health, forwarders);

  // A new deployment or status change: read the grid again. A delivery: only the
  // strips of the deployments it concerns, if they are on the grid.
  const refreshAll = debounce(async () => {
    state.components = await get("/components");
    state.strips = await summaries(ids());
    renderGrid(grid, state);
  }, 250);
  const changed = new Set();
  const refreshStrips = debounce(async () => {
    const shown = new Set(ids());
    const wanted = [...changed].filter((id) => shown.has(id));
    changed.clear();
    if (!wanted.length) return;
    for (const [id, rows] of await summaries(wanted)) state.strips.set(id, rows);
    for (const id of wanted) {
      grid.querySelector(`td[data-deployment="${CSS.escape(id)}"] [data-strip]`)
        ?.replaceWith(strip(state.strips.get(id)));
    }
  }, 250);
  // Health counts read every delivery of the last day: not more often than this.
  const refreshHealth = debounce(async () => renderHealth(health, await get("/forwarders")), 3000);
  live((type, data) => {
    if (type === "new" || type === "status") refreshAll();
    if (type === "delivery") {
      changed.add(data.deployment_id);
      refreshStrips();
      refreshHealth();
    }
  });
}

function renderGrid(node, { components, strips }) {
  const stages = [...new Set(components.flatMap((c) => c.latest_deployments.map((d) => d.stage ?? "")))].sort();
  if (components.length === 0) {
    node.replaceChildren(el("p", { class: "muted" }, "No deployment recorded yet."));
    return;
  }
  const head = el("tr", {}, el("th", { scope: "col" }, "Component"),
    stages.map((s) => el("th", { scope: "col" }, s || "(no stage)")));
  const rows = components.map((c) => {
    const byStage = new Map(c.latest_deployments.map((d) => [d.stage ?? "", d]));
    return el("tr", { "data-component": c.slug },
      el("th", { scope: "row" }, link(componentHref(c.slug), c.slug)),
      stages.map((s) => cell(byStage.get(s), strips)));
  });
  node.replaceChildren(el("table", { class: "grid" }, el("thead", {}, head), el("tbody", {}, rows)));
}

function cell(d, strips) {
  if (!d) return el("td", { class: "empty" }, el("span", { class: "muted" }, "—"));
  return el("td", { "data-deployment": d.id, "data-stage": d.stage ?? "" },
    el("div", { class: "version" }, link(deploymentHref(d.component, d.id), d.version)),
    el("div", {}, status(d.status), " ", when(d.finished_at || d.started_at || d.created_at)),
    strip(strips.get(d.id)));
}

function renderHealth(node, forwarders) {
  const head = el("tr", {}, ["Forwarder", "Type", "State", "Circuit", "Success 24 h", "Queue", "Last error"]
    .map((h) => el("th", { scope: "col" }, h)));
  const rows = forwarders.map((f) => el("tr", { "data-forwarder": f.name },
    el("th", { scope: "row" }, f.name),
    el("td", {}, f.type),
    el("td", {}, el("span", { class: `state ${f.state}` }, f.state), f.disabled_reason ? ` (${f.disabled_reason})` : ""),
    el("td", {}, f.state === "circuit-open" ? "open" : "closed"),
    el("td", {}, f.success_rate_24h === null ? "—" : `${(f.success_rate_24h * 100).toFixed(1)} %`),
    el("td", {}, String(f.counts.pending)),
    el("td", { class: "excerpt" }, f.counts.last_error
      ? [el("div", {}, f.counts.last_error), el("div", { class: "muted" }, when(f.counts.last_error_at))]
      : "—")));
  node.replaceChildren(el("table", {}, el("thead", {}, head), el("tbody", {}, rows)));
}
