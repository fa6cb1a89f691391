// The console's entry: signs in (a key typed once, or a portal link's token from the
// URL fragment), then shows the view the hash names (`#/deliveries?status=failed`).

import { ApiError, call, session, whenSessionEnds } from "./api.js";
import { errorBox, h, show, time } from "./dom.js";
import { overview } from "./overview.js";
import { tenantList, tenantPage } from "./tenants.js";
import { endpointList, newEndpoint } from "./endpoints.js";
import { endpointPage } from "./endpoint.js";
import { deliveryLog } from "./deliveries.js";
import { deliveryPage } from "./delivery.js";
import { eventPage } from "./event.js";

const main = document.getElementById("view");
const nav = document.getElementById("nav");
const who = document.getElementById("who");

// [pattern, view, operator only]
const ROUTES = [
  [/^\/(overview)?$/, overview],
  [/^\/tenants$/, tenantList, true],
  [/^\/tenants\/([^/]+)$/, tenantPage, true],
  [/^\/endpoints$/, endpointList],
  [/^\/endpoints\/new$/, newEndpoint],
  [/^\/endpoints\/([^/]+)$/, endpointPage],
  [/^\/deliveries$/, deliveryLog],
  [/^\/deliveries\/([^/]+)$/, deliveryPage],
  [/^\/events\/([^/]+)$/, eventPage],
];

const SECTIONS = [
  ["#/", "Overview", /^\/(overview)?$/],
  ["#/tenants", "Tenants", /^\/tenants/, true],
  ["#/endpoints", "Endpoints", /^\/endpoints/],
  ["#/deliveries", "Deliveries", /^\/(deliveries|events)/],
];

function where() {
  const [path, q = ""] = location.hash.replace(/^#/, "").split("?");
  return { path: path || "/", params: new URLSearchParams(q) };
}

function chrome(s) {
  const operator = s.mode === "operator";
  const { path } = where();
  show(
    nav,
    SECTIONS.filter(([, , , op]) => operator || !op).map(([href, label, re]) =>
      h("a", { href, "aria-current": re.test(path) ? "page" : null }, label),
    ),
    h("button", { type: "button", onclick: signOut }, "Sign out"),
  );
  who.textContent =
    s.mode === "operator"
      ? "Operator"
      : s.mode === "portal"
        ? `Tenant ${s.tenant} · portal until ${time(s.expiresAt)}`
        : `Tenant ${s.tenant}`;
}

async function route() {
  const s = session.get();
  if (!s) return login();
  chrome(s);
  const { path, params } = where();
  const operator = s.mode === "operator";
  const view = h("div");
  main.replaceChildren(view);
  for (const [re, render, opOnly] of ROUTES) {
    const m = re.exec(path);
    if (!m || (opOnly && !operator)) continue;
    const ctx = { params, operator, tenant: s.tenant, mode: s.mode, id: m[1] && decodeURIComponent(m[1]) };
    try {
      await render(view, ctx);
    } catch (err) {
      if (view.isConnected) show(view, errorBox(err));
    }
    return;
  }
  show(view, h("h1", {}, "Not found"), h("p", {}, "The console has no such page. "), h("a", { href: "#/" }, "Back to the overview"));
}

function signOut() {
  session.close();
  location.hash = "";
  login("Signed out.");
}

// Which console a key opens: every tenant's (the admin key) or its own tenant's.
async function signIn(key) {
  try {
    await call("GET", "/v1/tenants?limit=1", { key });
    return { mode: "operator" };
  } catch (err) {
    const tenant = /^hk_([A-Za-z0-9_-]{1,64})\./.exec(key)?.[1];
    if (err.status !== 403 || !tenant) throw err;
    await call("GET", "/v1/endpoints?limit=1", { key });
    return { mode: "tenant", tenant };
  }
}

function login(message) {
  nav.replaceChildren();
  who.textContent = "";
  const input = h("input", { type: "password", name: "key", required: true, autocomplete: "off", spellcheck: "false" });
  const out = h("div");
  const form = h(
    "form",
    { class: "card login", "aria-label": "Sign in" },
    h("h1", {}, "Sign in"),
    h("p", { class: "muted" }, "The admin key, or a tenant's key with scope read or manage. It stays in this tab and is sent as a header."),
    message ? h("p", { role: "status" }, message) : null,
    h("label", {}, "API key", input),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Sign in")),
    out,
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const key = input.value.trim();
    show(out, h("p", { class: "muted", role: "status" }, "Checking the key…"));
    try {
      const { mode, tenant } = await signIn(key);
      session.open(key, mode, tenant);
      input.value = "";
      if (location.hash && location.hash !== "#") route();
      else location.hash = "#/";
    } catch (err) {
      show(out, errorBox(err.status === 401 ? new ApiError(401, { detail: "this key is not accepted" }) : err));
    }
  });
  show(main, form);
  input.focus();
}

function refused(err) {
  nav.replaceChildren();
  who.textContent = "";
  const expired = err.status === 401;
  show(
    main,
    h(
      "div",
      { class: "card login", role: "alert" },
      h("h1", {}, expired ? "This link cannot be opened" : "The portal could not open"),
      expired
        ? h("p", {}, "The portal link has expired, has been used already, or is not valid. Links work once and for a limited time: ask for a new one.")
        : errorBox(err),
    ),
  );
}

// A portal link: `/console#token=…`. The token leaves the address bar first, then is
// spent for a session key (once: a reload cannot reuse it).
async function openPortal(token) {
  history.replaceState(null, "", location.pathname + location.search);
  show(main, h("p", { class: "muted", role: "status" }, "Opening the portal…"));
  try {
    const { body } = await call("POST", "/v1/portal/sessions", { key: token });
    session.open(body.key, "portal", body.tenant_id, body.expires_at);
    location.hash = "#/";
  } catch (err) {
    session.close();
    refused(err);
  }
}

whenSessionEnds(() => {
  const s = session.get();
  session.close();
  login(s?.mode === "portal" ? "The portal session has ended: ask for a new link." : "The key no longer works: sign in again.");
});

window.addEventListener("hashchange", () => {
  if (!/^#token=/.test(location.hash)) route();
});

const token = /^#token=([^&]+)/.exec(location.hash)?.[1];
if (token) openPortal(decodeURIComponent(token));
else route();
