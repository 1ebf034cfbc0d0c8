// Insights: deploys per day and DORA figures from GET /insights/dora, when this relay
// has that endpoint (its API description says so; asking blindly would log a 404).
import { get } from "./api.js";
import { el } from "./dom.js";

const ENDPOINT = "/insights/dora";

export async function insights(root) {
  root.append(el("h1", { tabindex: "-1" }, "Insights"));
  const document = await get("/openapi.json");
  if (!document.paths || !document.paths[ENDPOINT]) {
    root.append(el("p", { class: "notice", "data-unavailable": "" },
      "Insights are not available on this relay: it has no DORA endpoint (GET /insights/dora)."));
    return;
  }
  const data = await get(ENDPOINT);
  root.append(figures(data));
}

// Whatever the endpoint answers, shown as nested lists of text.
function figures(value) {
  if (value === null || typeof value !== "object") return el("span", {}, String(value));
  if (Array.isArray(value)) {
    const rows = value.slice(0, 400).map((item) => el("li", {}, figures(item)));
    return el("ol", { class: "figures" }, rows);
  }
  return el("dl", { class: "fields" }, Object.entries(value).map(([key, item]) =>
    [el("dt", {}, key.replaceAll("_", " ")), el("dd", {}, figures(item))]));
}
