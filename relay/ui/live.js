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
export function connect(onState) {
  if (source !== null) return;
  let dropped = false;
  source = new EventSource("/events");
  source.onopen = () => { onState("live", dropped && !lastId); dropped = false; };
  source.addEventListener("error", () => { dropped = true; });
  source.onerror = () => onState(source && source.readyState === EventSource.CLOSED ? "closed" : "reconnecting…");
  for (const type of ["new", "status", "log", "delivery", "skipped"]) {
    source.addEventListener(type, (event) => dispatch(type, event));
  }
}

export function disconnect() {
  if (source !== null) source.close();
  source = null;
}
