// DOM helpers: every piece of text goes in as a text node, never as HTML.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else if (name === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  append(node, children);
  return node;
}

export function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

// One formatter for every time shown: making one per call is what makes long lists slow.
const LOCAL = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

// A time in the browser's zone, with the UTC value on hover.
export function when(iso) {
  if (!iso) return el("span", { class: "muted" }, "—");
  const date = new Date(iso);
  return el("time", { datetime: iso, title: `UTC ${date.toISOString().replace(".000Z", "Z")}` },
    LOCAL.format(date));
}

// Let the browser paint and handle input between chunks of a long list.
export function yieldToBrowser() {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

const STATUS = {
  success: ["✓", "ok"], queued: ["…", "busy"], building: ["◔", "busy"], pushing: ["◑", "busy"],
  starting: ["◕", "busy"], "build-error": ["✗", "bad"], "crashed-error": ["✗", "bad"],
  "timeout-error": ["✗", "bad"], aborted: ["⊘", "warn"],
};

export function status(value) {
  const [symbol, tone] = STATUS[value] || ["?", "warn"];
  return el("span", { class: `status ${tone}` }, el("span", { "aria-hidden": "true" }, symbol), " ", value);
}

// One state per forwarder from a deployment's delivery rows (one per event):
// dead beats retrying beats pending beats delivered.
const RANK = { delivered: 0, skipped: 0, pending: 1, retrying: 2, dead: 3 };
const SYMBOL = { delivered: "✓", skipped: "–", pending: "…", retrying: "↻", dead: "✗" };

export function targetStates(rows) {
  const out = new Map();
  for (const row of rows || []) {
    const state = row.status === "pending" && row.attempts > 0 ? "retrying" : row.status;
    const known = out.get(row.forwarder);
    if (known === undefined || RANK[state] > RANK[known]) out.set(row.forwarder, state);
  }
  return out;
}

export function strip(rows) {
  const states = targetStates(rows);
  const node = el("span", { class: "strip", "data-strip": "" });
  if (states.size === 0) return append(node, [el("span", { class: "muted" }, "no targets")]);
  for (const [forwarder, state] of [...states].sort()) {
    node.append(el("span", { class: `target ${state}`, title: `${forwarder}: ${state}`,
      "data-forwarder": forwarder, "data-state": state },
      el("span", { "aria-hidden": "true" }, SYMBOL[state] || "?"), " ", forwarder));
  }
  return node;
}

export function link(href, ...children) {
  return el("a", { href }, ...children);
}

export function deploymentHref(component, id) {
  return `#/deployment/${encodeURIComponent(component)}/${encodeURIComponent(id)}`;
}

export function componentHref(component) {
  return `#/component/${encodeURIComponent(component)}`;
}

// Run `fn` once after `ms` however often it is asked for meanwhile.
export function debounce(fn, ms) {
  let timer = null;
  return () => {
    if (timer !== null) return;
    timer = setTimeout(() => { timer = null; fn(); }, ms);
  };
}
