// The live feed (/events, Server-Sent Events). The browser's EventSource reconnects by
// itself and sends Last-Event-ID, so relay replays whatever was missed meanwhile.

const handlers = new Set();
let source = null;

export function subscribe(fn) {
  handlers.add(fn);
  return () => handlers.delete(fn);
}

function dispatch(type, event) {
  let data;
  try { data = JSON.parse(event.data); } catch { return; }
  for (const fn of [...handlers]) fn(type, data);
}

// `onState(text, resumed)`: resumed is true when the feed came back after a drop. The
// browser resumes from the last frame id it saw; a page that saw none yet (nothing
// happened since it opened) has no id to resume from, so the caller redraws then.
export function connect(onState) {
  if (source !== null) return;
  let dropped = false;
  source = new EventSource("/events");
  source.onopen = () => { onState("live", dropped); dropped = false; };
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
