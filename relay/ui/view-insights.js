// Insights: deploys per day and the DORA keys from GET /insights/dora, when this relay
// has that endpoint (its API description says so; asking blindly would log a 404).
import { get } from "./api.js";
import { debounce, el } from "./dom.js";

const ENDPOINT = "/insights/dora";
const KEYS = [
  ["deployment_frequency", "Deploys per day", (f) => (f.per_day ?? null) === null ? "—" : `${f.per_day} a day (${f.per_week} a week)`],
  ["lead_time", "Change lead time", (f) => f.median_seconds == null ? "—" : `median ${duration(f.median_seconds)}, p90 ${duration(f.p90_seconds)}`],
  ["change_failure_rate", "Change failure rate", (f) => f.rate == null ? "—" : `${(f.rate * 100).toFixed(1)} % (${f.failed} of ${f.total})`],
  ["recovery_time", "Recovery time", (f) => f.median_seconds == null ? "—" : `median ${duration(f.median_seconds)}`],
];

export async function insights(root, live, args, params) {
  root.append(el("h1", { tabindex: "-1" }, "Insights"));
  const api = await get("/openapi.json");
  if (!api.paths || !api.paths[ENDPOINT]) {
    root.append(el("p", { class: "notice", "data-unavailable": "" },
      "Insights are not available on this relay: it has no DORA endpoint (GET /insights/dora)."));
    return;
  }
  const query = new URLSearchParams();
  for (const name of ["component", "stage", "window"]) if (params.get(name)) query.set(name, params.get(name));
  const body = el("div");
  root.append(form(params), body);
  const load = async () => render(body, await get(`${ENDPOINT}${query.size ? `?${query}` : ""}`));
  await load();
  // A deployment recorded or finished changes the figures: read them again (not often).
  const refresh = debounce(load, 2000);
  live((type) => { if (type === "new" || type === "status") refresh(); });
}

function render(node, data) {
  const window = data.window || {};
  const known = new Set(["component", "stage", "window", ...KEYS.map(([key]) => key)]);
  const rest = Object.entries(data).filter(([key]) => !known.has(key));
  node.replaceChildren(
    el("p", { class: "muted" }, `${data.component || "every component"}, stage ${data.stage ?? "—"}, `,
      `${window.days ?? "?"} days`),
    el("div", { class: "cards" }, KEYS.filter(([key]) => data[key]).map(([key, title, text]) =>
      el("section", { class: "card", "data-key": key }, el("h2", {}, title),
        el("p", { class: "figure" }, text(data[key])),
        data[key].band ? el("p", { class: `band ${data[key].band}` }, data[key].band) : null))),
    rest.length ? figures(Object.fromEntries(rest)) : "");
}

function form(params) {
  const node = el("form", { class: "filters", "aria-label": "Insights filters" },
    el("label", {}, "Component ", el("input", { name: "component", value: params.get("component") || "", size: 12 })),
    el("label", {}, "Stage ", el("input", { name: "stage", value: params.get("stage") || "production", size: 12 })),
    el("label", {}, "Days ", el("input", { name: "window", type: "number", min: 1, max: 365, value: params.get("window") || "30" })),
    el("button", { type: "submit" }, "Show"));
  node.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const [name, value] of new FormData(node)) if (value) chosen.set(name, value);
    location.hash = `#/insights?${chosen}`;
  });
  return node;
}

function duration(seconds) {
  if (seconds == null) return "—";
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172800) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}

// Fields this page does not know, shown as nested lists of text.
function figures(value) {
  if (value === null || typeof value !== "object") return el("span", {}, String(value));
  if (Array.isArray(value)) return el("ol", { class: "figures" }, value.slice(0, 400).map((item) => el("li", {}, figures(item))));
  return el("dl", { class: "fields" }, Object.entries(value).map(([key, item]) =>
    [el("dt", {}, key.replaceAll("_", " ")), el("dd", {}, figures(item))]));
}
