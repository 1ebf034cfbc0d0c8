// The live feed (/events, Server-Sent Events). The browser's EventSource reconnects by
// itself and sends Last-Event-ID, so relay replays whatever was missed meanwhile.

const handlers = new Set();
let source = null;
let lastId = "";  // the id of the last frame seen: what the browser resumes from

export function subscribe(fn) {
  handlers.add(fn);
  return () => handlers.delete(fn);
}

function dispatch(type, event) {
  if (event.lastEventId) lastId = event.lastEventId;
  let data;
  try { data = JSON.parse(event.data); } catch { return; }
  for (const fn of [...handlers]) fn(type, data);
}

// `onState(text, redraw)`: redraw is true when the feed came back after a drop without
// an id to resume from (the page saw no frame yet), so the caller reads the view again.
// With an id the browser resumes by itself and relay replays exactly what was missed:
// reading the view again then would race with the replay (a line twice, or lost).
// The browser gives up for good when relay answers with an error (401 once the session
// ended, 429 or 503 when busy): `onClosed` is called then, and may `reopen()`.
export function connect(onState, onClosed) {
  if (source !== null) return;
  open(onState, onClosed, false);
}

function open(onState, onClosed, dropped) {
  // A new EventSource sends no Last-Event-ID header: the id goes in the query instead.
  const url = lastId ? `/events?last_event_id=${encodeURIComponent(lastId)}` : "/events";
  const mine = new EventSource(url);
  source = mine;
  reopen = () => { if (source === mine) open(onState, onClosed, true); };
  mine.onopen = () => { onState("live", dropped && !lastId); dropped = false; };
  mine.onerror = () => {
    dropped = true;
    if (mine.readyState !== EventSource.CLOSED) return onState("reconnecting…");
    onState("closed");
    onClosed();
  };
  for (const type of ["new", "status", "log", "delivery", "skipped"]) {
    mine.addEventListener(type, (event) => dispatch(type, event));
  }
}

// Open the feed again after it closed (resuming from the last frame seen).
export let reopen = () => {};

export function disconnect() {
  if (source !== null) source.close();
  source = null;
  reopen = () => {};
}
