// The REST API as the console calls it: the signed-in key travels in the Authorization header
// of every call, never in a URL (URLs end up in proxy and server logs).

const KEY_SLOT = "dakera.console.key";
// Paths are resolved against the page's folder, so a console served under a reverse proxy's
// path prefix calls the API under the same prefix.
const BASE = new URL("./", document.baseURI);

export class ApiError extends Error {
  constructor(message, status, code) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The key of this browser tab (sessionStorage: gone when the tab closes). */
export function storedKey() {
  return sessionStorage.getItem(KEY_SLOT);
}

export function storeKey(key) {
  if (key) sessionStorage.setItem(KEY_SLOT, key);
  else sessionStorage.removeItem(KEY_SLOT);
}

export function url(path, query) {
  const target = new URL(path.replace(/^\//, ""), BASE);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    target.searchParams.set(name, String(value));
  }
  return target;
}

/** Path segment encoding for ids (memory ids may hold any character). */
export function seg(value) {
  return encodeURIComponent(String(value));
}

function headers(extra) {
  const sent = { ...extra };
  const key = storedKey();
  if (key) sent.Authorization = `Bearer ${key}`;
  return sent;
}

async function failure(response) {
  let message = `${response.status} ${response.statusText}`;
  let code = "HTTP_" + response.status;
  try {
    const body = await response.json();
    if (body && typeof body === "object") {
      message = body.error || body.message || message;
      code = body.code || code;
    }
  } catch {
    // not JSON: keep the status line
  }
  return new ApiError(message, response.status, code);
}

/** One API call; resolves to the parsed JSON (or text) body, rejects with ApiError. */
export async function call(method, path, { query, body, signal, key } = {}) {
  const init = { method, headers: headers({ Accept: "application/json" }), signal };
  if (key !== undefined) {
    if (key) init.headers.Authorization = `Bearer ${key}`;
    else delete init.headers.Authorization;
  }
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path, query), init);
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError("Cannot reach the server. Is it running?", 0, "NETWORK");
  }
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") || "";
  return type.includes("json") ? response.json() : response.text();
}

export const get = (path, query, signal) => call("GET", path, { query, signal });
export const post = (path, body, query) => call("POST", path, { body, query });

/**
 * Follow a Server-Sent Events stream with fetch() rather than EventSource, which cannot send
 * headers: the key stays in the Authorization header. Reconnects after a drop until `signal`
 * aborts. `onState` hears "connecting", "live", "reconnecting" and "stopped".
 */
export async function follow(path, query, { onEvent, onState, signal }) {
  while (!signal.aborted) {
    onState("connecting");
    try {
      const response = await fetch(url(path, query), {
        headers: headers({ Accept: "text/event-stream" }),
        signal,
        cache: "no-store",
      });
      if (!response.ok) throw await failure(response);
      onState("live");
      const reader = response.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true }).replace(/\r\n?/g, "\n");
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = frame
            .split("\n")
            .filter((line) => line.startsWith("data:"))
            .map((line) => line.slice(5).replace(/^ /, ""))
            .join("\n");
          if (data) {
            try {
              onEvent(JSON.parse(data));
            } catch {
              // a frame that is not JSON is skipped, as the SDK does
            }
          }
        }
      }
    } catch (error) {
      if (signal.aborted) break;
      if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
        onState("stopped", error);
        return;
      }
    }
    if (signal.aborted) break;
    onState("reconnecting");
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  onState("stopped");
}
