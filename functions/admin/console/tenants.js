// Tenants (the operator's): the list, a new one, and a tenant's page with its portal link.

import { call, get, post, query, seg } from "./api.js";
import { action, confirm, errorBox, field, h, link, loading, props, secretBox, show, table, time, values } from "./dom.js";

export async function tenantList(view, ctx) {
  const cursor = ctx.params.get("cursor") || "";
  show(view, h("h1", {}, "Tenants"), loading());
  const page = await get(`/v1/tenants${query({ limit: 50, cursor })}`);
  const out = h("div");
  const form = h(
    "form",
    { class: "grid card", "aria-label": "New tenant" },
    field("Name", { name: "name", required: true, maxlength: 128 }),
    field("Id (optional: your customer's id)", { name: "id", pattern: "[A-Za-z0-9_-]{1,64}" }),
    h("button", { type: "submit", class: "primary" }, "Create tenant"),
  );
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      const t = await post("/v1/tenants", values(form));
      location.hash = `#/tenants/${seg(t.id)}`;
    } catch (err) {
      show(out, errorBox(err));
    }
  });
  show(
    view,
    h("h1", {}, "Tenants"),
    h("p", { class: "muted" }, "Each customer's endpoints, deliveries and keys are its own. The built-in tenant `default` is not listed."),
    form,
    out,
    table(
      [
        ["Id", (t) => link(`#/tenants/${seg(t.id)}`, t.id)],
        ["Name", (t) => t.name],
        ["Created", (t) => time(t.created_at)],
      ],
      page.data,
      "No tenants yet.",
    ),
    page.next_cursor ? h("div", { class: "pager" }, link(`#/tenants${query({ cursor: page.next_cursor })}`, "Next page")) : null,
  );
}

export async function tenantPage(view, ctx) {
  show(view, h("h1", {}, `Tenant ${ctx.id}`), loading());
  const t = await get(`/v1/tenants/${seg(ctx.id)}`);
  const out = h("div");
  const limits = Object.entries(t.limits || {}).map(([k, v]) => `${k} ${v}`).join(", ");
  const minutes = h("select", { name: "expires_in", "aria-label": "Link lifetime" },
    [["3600", "1 hour"], ["86400", "1 day"], ["604800", "7 days"], ["600", "10 minutes"]].map(([v, l]) => h("option", { value: v }, l)));
  show(
    view,
    h("h1", {}, `Tenant ${t.name}`),
    props([
      ["Id", t.id],
      ["Name", t.name],
      ["Limits", limits || "the service's defaults"],
      ["Metadata", Object.keys(t.metadata || {}).length ? JSON.stringify(t.metadata) : "—"],
      ["Created", time(t.created_at)],
    ]),
    h(
      "div",
      { class: "actions" },
      link(`#/${query({ tenant_id: t.id })}`, "Overview"),
      link(`#/endpoints${query({ tenant_id: t.id })}`, "Endpoints"),
      link(`#/deliveries${query({ tenant_id: t.id })}`, "Deliveries"),
    ),
    t.built_in
      ? null
      : [
          h("h2", {}, "Portal link"),
          h("p", { class: "muted" }, "A link that opens this console for the tenant alone: its endpoints and deliveries. It works once; whoever opens it gets an 8-hour session."),
          h(
            "div",
            { class: "actions" },
            h("label", {}, "Valid for", minutes),
            action(
              "Make a portal link",
              async () => {
                const l = await post(`/v1/tenants/${seg(t.id)}/portal-links`, { expires_in: Number(minutes.value) });
                // The path, on the origin this console was opened at.
                const url = `${location.origin}${l.path}`;
                show(out, secretBox(`Send this link to the tenant; it expires ${time(l.expires_at)} and is shown only now.`, url));
              },
              { cls: "primary", out },
            ),
          ),
          out,
          h("h2", {}, "Delete"),
          h("p", { class: "muted" }, "Revokes its keys and disables its endpoints; its log ages out with the retention."),
          action(
            "Delete tenant",
            async () => {
              if (!(await confirm(`Delete tenant ${t.id}? Its keys stop working and its endpoints are disabled.`, "Delete tenant"))) return;
              await call("DELETE", `/v1/tenants/${seg(t.id)}`);
              location.hash = "#/tenants";
            },
            { cls: "danger", out },
          ),
        ],
  );
}
