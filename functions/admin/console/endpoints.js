// Endpoints: the list (a tenant's, or every tenant's for the operator) and a new one,
// whose secret is shown once.

import { get, post, query, seg } from "./api.js";
import { errorBox, field, h, link, orderingField, loading, secretBox, show, table, values } from "./dom.js";
import { endpointState } from "./overview.js";

export async function endpointList(view, ctx) {
  const tenant = ctx.operator ? ctx.params.get("tenant_id") || "" : "";
  const cursor = ctx.params.get("cursor") || "";
  show(view, h("h1", {}, "Endpoints"), loading());
  const page = await get(`/v1/endpoints${query({ tenant_id: tenant, limit: 50, cursor })}`);
  show(
    view,
    h("h1", {}, tenant ? `Endpoints of tenant ${tenant}` : "Endpoints"),
    h("div", { class: "actions" }, link(`#/endpoints/new${query({ tenant_id: tenant })}`, "New endpoint")),
    table(
      [
        ["Name", (e) => link(`#/endpoints/${seg(e.id)}`, e.name)],
        ["URL", (e) => e.url],
        ["Status", endpointState],
        ["Event types", (e) => e.event_types.join(", ")],
        ctx.operator ? ["Tenant", (e) => e.tenant_id] : null,
        ["", (e) => link(`#/deliveries${query({ endpoint_id: e.id })}`, "deliveries")],
      ].filter(Boolean),
      page.data,
      "No endpoints yet: make one.",
    ),
    page.next_cursor
      ? h("div", { class: "pager" }, link(`#/endpoints${query({ tenant_id: tenant, cursor: page.next_cursor })}`, "Next page"))
      : null,
  );
}

// "a, b c" → ["a", "b", "c"]
export const typesOf = (s) => (s || "").split(/[\s,]+/).filter(Boolean);

export async function newEndpoint(view, ctx) {
  const out = h("div");
  const form = h(
    "form",
    { class: "grid card", "aria-label": "New endpoint" },
    field("Name", { name: "name", required: true, maxlength: 128 }),
    field("URL", { name: "url", type: "url", required: true, placeholder: "https://example.com/webhooks" }),
    field("Event types (comma-separated; * for all)", { name: "event_types", value: "*" }),
    ctx.operator ? field("Tenant (empty: default)", { name: "tenant_id", value: ctx.params.get("tenant_id") || "" }) : null,
    field("Timeout (seconds, 1–30)", { name: "timeout_seconds", type: "number", min: 1, max: 30, placeholder: "15" }),
    field("Rate limit (requests/s)", { name: "rate_limit_per_second", type: "number", min: 1, max: 1000 }),
    field("Largest body sent whole (bytes)", { name: "max_body_bytes", type: "number", min: 65536, max: 5308416, placeholder: "262144" }),
    orderingField("none"),
    h("button", { type: "submit", class: "primary" }, "Create endpoint"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const v = values(form);
    const body = { name: v.name, url: v.url, event_types: typesOf(v.event_types) };
    if (v.tenant_id) body.tenant_id = v.tenant_id;
    for (const k of ["timeout_seconds", "rate_limit_per_second", "max_body_bytes"]) if (v[k]) body[k] = Number(v[k]);
    if (v.ordering && v.ordering !== "none") body.ordering = v.ordering;
    show(out, loading("Creating"));
    try {
      const made = await post("/v1/endpoints", body);
      // The secret is in this answer only: shown now, then gone from the page.
      show(
        view,
        h("h1", {}, `Endpoint ${made.name} created`),
        secretBox("Its signing secret, shown only this once: store it with the receiver.", made.secret),
        h("div", { class: "actions" }, link(`#/endpoints/${seg(made.id)}`, "I have stored it: open the endpoint")),
      );
    } catch (err) {
      show(out, errorBox(err));
    }
  });
  show(view, h("h1", {}, "New endpoint"), form, out);
  form.querySelector("input").focus();
}
