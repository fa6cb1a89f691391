// The API, called with this tab's key. The key is kept in sessionStorage (this tab only,
// gone when it closes) and sent as a header; it never goes into a URL.

const STORE = "hookline.session";

export const session = {
  get() {
    try {
      return JSON.parse(sessionStorage.getItem(STORE) || "null");
    } catch {
      return null;
    }
  },
  // mode: "operator" (the admin key), "tenant" (a tenant's own key) or "portal" (a link's session).
  open(key, mode, tenant, expiresAt) {
    sessionStorage.setItem(STORE, JSON.stringify({ key, mode, tenant, expiresAt }));
  },
  close() {
    sessionStorage.removeItem(STORE);
  },
};

// What the page does when the session's key stops working (set by app.js).
let onSessionEnded = () => {};
export function whenSessionEnds(f) {
  onSessionEnded = f;
}

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || (status ? `the API answered ${status}` : "the API did not answer"));
    this.status = status;
    this.errors = Array.isArray(problem.errors) ? problem.errors : [];
    this.requestId = problem.request_id;
  }
}

// One call. `key` overrides the session's (the login check, a portal link's token).
export async function call(method, path, { body, key, headers = {} } = {}) {
  const sent = key ?? session.get()?.key;
  const h = { accept: "application/json, application/problem+json", ...headers };
  if (sent) h.authorization = `Bearer ${sent}`;
  if (body !== undefined) h["content-type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method,
      headers: h,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
      credentials: "omit",
    });
  } catch {
    throw new ApiError(0, { detail: "the API did not answer: is the network up?" });
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    if (res.status === 401 && key === undefined) onSessionEnded();
    throw new ApiError(res.status, data && typeof data === "object" ? data : {});
  }
  return { status: res.status, body: data, etag: res.headers.get("etag") };
}

export const get = async (path) => (await call("GET", path)).body;
export const post = async (path, body) => (await call("POST", path, { body })).body;

// "?a=1&b=x" from the given values that are set; "" when none is.
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") q.set(k, String(v));
  }
  const s = q.toString();
  return s ? `?${s}` : "";
}

// A path segment from an id the page was given (the hash, an API answer).
export const seg = (id) => encodeURIComponent(id);
