// The delivery log: newest first, filtered by tenant, endpoint, status, event type and
// time, a page at a time. While a delivery shown is still open it refreshes itself.

import { get, query, seg } from "./api.js";
import { attemptCount, badge, field, h, link, loading, pause, show, table, time, utc } from "./dom.js";

const FILTERS = ["tenant_id", "endpoint_id", "status", "event_type", "since", "until"];

export async function deliveryLog(view, ctx) {
  const p = ctx.params;
  const cursor = p.get("cursor") || "";
  const filters = Object.fromEntries(FILTERS.map((k) => [k, p.get(k) || ""]));
  if (!ctx.operator) filters.tenant_id = "";
  show(view, h("h1", {}, "Deliveries"), loading());
  const endpoints = await get(`/v1/endpoints${query({ limit: 200, tenant_id: filters.tenant_id })}`);
  const names = new Map(endpoints.data.map((e) => [e.id, e.name]));
  const list = h("div", { "aria-live": "polite" }, loading());

  const endpointSelect = h(
    "select",
    { name: "endpoint_id" },
    h("option", { value: "" }, "any"),
    endpoints.data.map((e) => h("option", { value: e.id, selected: e.id === filters.endpoint_id }, e.name)),
  );
  const statusSelect = h(
    "select",
    { name: "status" },
    ["", "pending", "retrying", "delivered", "failed", "expired", "superseded"].map((s) => h("option", { value: s, selected: s === filters.status }, s || "any")),
  );
  const form = h(
    "form",
    { class: "grid card", "aria-label": "Filters" },
    ctx.operator ? field("Tenant", { name: "tenant_id", value: filters.tenant_id }) : null,
    h("label", {}, "Endpoint", endpointSelect),
    h("label", {}, "Status", statusSelect),
    field("Event type", { name: "event_type", value: filters.event_type }),
    field("From (UTC)", { name: "since", type: "datetime-local", value: local(filters.since) }),
    field("Until (UTC)", { name: "until", type: "datetime-local", value: local(filters.until) }),
    h("button", { type: "submit", class: "primary" }, "Apply"),
  );
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = Object.fromEntries(new FormData(form));
    for (const k of ["since", "until"]) f[k] = utc(f[k]);
    location.hash = `#/deliveries${query(f)}`;
  });
  show(view, h("h1", {}, "Deliveries"), form, list);

  const fetchPage = () => get(`/v1/deliveries${query({ ...filters, limit: 50, cursor })}`);
  const started = Date.now();
  let page = await fetchPage();
  for (;;) {
    render(list, page, names, filters, cursor);
    // The first page looks again while this view is shown and a delivery on it is still
    // open, or for a minute while it is empty (an event just sent is on its way).
    const open = page.data.some((d) => d.status === "pending" || d.status === "retrying");
    const awaited = !page.data.length && Date.now() - started < 60_000;
    if (cursor || !(open || awaited)) return;
    await pause();
    if (!view.isConnected) return;
    page = await fetchPage();
    if (!view.isConnected) return;
  }
}

function render(list, page, names, filters, cursor) {
  show(
    list,
    table(
      [
        ["Delivery", (d) => link(`#/deliveries/${seg(d.id)}`, d.id)],
        ["Status", (d) => badge(d.status)],
        ["Event type", (d) => d.event_type],
        ["Endpoint", (d) => names.get(d.endpoint_id) ?? d.endpoint_id],
        ["Attempts", attemptCount],
        ["Last", (d) => (d.last_status_code ? `HTTP ${d.last_status_code}` : d.last_error ?? "—")],
        ["Next attempt", (d) => time(d.next_attempt_at)],
        ["Created", (d) => time(d.created_at)],
      ],
      page.data,
      "No deliveries match.",
    ),
    h(
      "div",
      { class: "pager" },
      cursor ? link(`#/deliveries${query(filters)}`, "First page") : null,
      page.next_cursor ? link(`#/deliveries${query({ ...filters, cursor: page.next_cursor })}`, "Next page") : null,
    ),
  );
}

// RFC 3339 UTC → the datetime-local input's value (UTC: the page says so).
function local(ts) {
  if (!ts) return "";
  const d = new Date(ts);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString().slice(0, 16);
}
