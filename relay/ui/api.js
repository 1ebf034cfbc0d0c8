// Calls to relay's API with the session cookie; state-changing ones carry the CSRF token.

export const session = { info: null };

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

const listeners = { signedOut: [] };
export function onSignedOut(fn) { listeners.signedOut.push(fn); }

export async function call(method, path, { body, token, text } = {}) {
  const headers = { Accept: text ? "text/plain" : "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (method !== "GET" && session.info?.csrf_token) headers["X-CSRF-Token"] = session.info.csrf_token;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method, headers, credentials: "same-origin", cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    let detail = null;
    try { detail = await response.json(); } catch { /* not JSON */ }
    if (response.status === 401 && !token) for (const fn of listeners.signedOut) fn();
    throw new ApiError(response.status, detail);
  }
  if (text) return { text: await response.text(), response };
  return { data: await response.json(), response };
}

export async function get(path) { return (await call("GET", path)).data; }

// The next page of a listing, from its Link header (same origin: path and query only).
export function nextPage(response) {
  const header = response.headers.get("Link") || "";
  const match = header.match(/<([^>]+)>;\s*rel="next"/);
  if (!match) return null;
  const url = new URL(match[1], location.href);
  return url.pathname + url.search;
}

// Delivery summaries of many deployments, in batches that keep each URL short.
const BATCH = 150;

export async function summaries(ids) {
  const unique = [...new Set(ids)];
  const parts = [];
  for (let i = 0; i < unique.length; i += BATCH) parts.push(unique.slice(i, i + BATCH));
  const answers = await Promise.all(parts.map((part) =>
    get(`/deliveries/summary?deployment=${part.map(encodeURIComponent).join(",")}`)));
  return new Map(answers.flat().map((item) => [item.deployment_id, item.deliveries]));
}
