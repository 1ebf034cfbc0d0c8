// The dashboard: sign-in, a hash router (#/..., so back, forward and reload work), the
// live feed shared by the views.
import { ApiError, call, onSignedOut, session } from "./api.js";
import { el } from "./dom.js";
import { connect, disconnect, reopen, subscribe } from "./live.js";
import { component } from "./view-component.js";
import { dead } from "./view-dead.js";
import { deployment } from "./view-deployment.js";
import { insights } from "./view-insights.js";
import { overview } from "./view-overview.js";

const ROUTES = [
  [/^\/?$/, overview, "overview"],
  [/^\/component\/([^/]+)$/, component, "overview"],
  [/^\/deployment\/([^/]+)\/([^/]+)$/, deployment, "overview"],
  [/^\/dead$/, dead, "dead"],
  [/^\/insights$/, insights, "insights"],
];

const $ = (id) => document.getElementById(id);
let unsubscribe = [];
let generation = 0;

async function route() {
  if (!session.info) return;
  for (const fn of unsubscribe) fn();
  unsubscribe = [];
  const mine = ++generation;
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const view = $("view");
  view.replaceChildren();
  view.setAttribute("aria-busy", "true");
  const found = ROUTES.map(([re, fn, nav]) => [path.match(re), fn, nav]).find(([m]) => m);
  for (const a of document.querySelectorAll("#nav a")) {
    if (found && a.dataset.view === found[2]) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  // Frames that come while the view loads are kept and handed to it once it is drawn
  // (flagged `early`: what it loaded may already hold them); dropped, they were lost.
  const handlers = [];
  let early = [];
  unsubscribe.push(subscribe((type, data) => {
    if (mine !== generation) return;
    if (early !== null) early.push([type, data]);
    else for (const fn of handlers) fn(type, data, false);
  }));
  const live = (fn) => handlers.push(fn);
  try {
    if (!found) throw new Error("No such page.");
    const [match, render] = found;
    const args = match.slice(1).map(decodeURIComponent);
    await render(view, live, args, new URLSearchParams(query));
  } catch (error) {
    if (mine !== generation || (error instanceof ApiError && error.status === 401)) return;
    view.append(el("p", { class: "error", role: "alert" },
      error instanceof ApiError && error.status === 404 ? "Not found." : `Could not load this view: ${error.message}`));
  } finally {
    if (mine === generation) {
      const kept = early;
      early = null;
      for (const [type, data] of kept) for (const fn of handlers) fn(type, data, true);
      view.removeAttribute("aria-busy");
      view.querySelector("h1")?.focus({ preventScroll: true });
    }
  }
}

function signedIn(info) {
  session.info = info;
  $("sign-in").hidden = true;
  $("nav").hidden = false;
  $("who").hidden = false;
  $("who-name").textContent = `${info.name}${info.admin ? " (admin)" : " (read-only)"}`;
  connect((state, redraw) => {
    $("live").textContent = state;
    if (state === "live") feedDelay = 3000;
    if (redraw) route();
  }, feedClosed);
  // Frames dropped for a slow page: draw the view again from the API.
  subscribe((type) => { if (type === "skipped") route(); });
  route();
}

// The feed was refused: signed out if the session ended (a page left open overnight),
// else open it again a little later (relay was busy or restarting behind a proxy),
// waiting twice as long each time it is refused again, up to a minute.
let feedDelay = 3000;
function feedClosed() {
  const delay = feedDelay;
  feedDelay = Math.min(feedDelay * 2, 60000);
  setTimeout(async () => {
    if (!session.info) return;
    try {
      const { data } = await call("GET", "/session");
      if (!data.signed_in) return signedOut();
    } catch { /* relay unreachable: try the feed again */ }
    reopen();
  }, delay);
}

function signedOut() {
  session.info = null;
  disconnect();
  for (const fn of unsubscribe) fn();
  unsubscribe = [];
  $("view").replaceChildren();
  $("nav").hidden = true;
  $("who").hidden = true;
  $("sign-in").hidden = false;
  $("token").focus();
}

async function signIn(event) {
  event.preventDefault();
  const input = $("token");
  const token = input.value.trim();
  input.value = "";  // the page keeps no token
  $("sign-in-error").textContent = "";
  try {
    const { data } = await call("POST", "/session", { token });
    signedIn(data);
  } catch (error) {
    $("sign-in-error").textContent = error.status === 401 ? "That token is unknown or revoked." : error.message;
  }
}

async function start() {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", async () => {
    try { await call("DELETE", "/session"); } finally { signedOut(); }
  });
  onSignedOut(signedOut);
  window.addEventListener("hashchange", route);
  const { data } = await call("GET", "/session");
  if (data.signed_in) signedIn(data);
  else signedOut();
}

start();
