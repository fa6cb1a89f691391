// An event: its payload as delivered (rendered as text) and its fan-out.

import { get, query, seg } from "./api.js";
import { badge, h, json, link, loading, props, show, table, time } from "./dom.js";

export async function eventPage(view, ctx) {
  show(view, h("h1", {}, "Event"), loading());
  const tenant = ctx.operator ? ctx.params.get("tenant_id") || "" : "";
  const r = await get(`/v1/events/${seg(ctx.id)}${query({ tenant_id: tenant })}`);
  const e = r.event;
  show(
    view,
    h("h1", {}, "Event ", h("span", { class: "muted" }, e.id)),
    props([
      ["Type", e.event_type],
      ["Tenant", e.tenant_id],
      ["Source", e.source],
      ["Time", time(e.timestamp)],
      e.expires_at ? ["Expires", time(e.expires_at)] : null,
      e.collapse_key ? ["Collapse key", e.collapse_key] : null,
      ["Fan-out", r.fanned_out ? "finished" : "in progress"],
    ]),
    h("h2", {}, "Payload"),
    json(e.data),
    h("h2", {}, "Deliveries"),
    table(
      [
        ["Delivery", (d) => link(`#/deliveries/${seg(d.id)}`, d.id)],
        ["Status", (d) => badge(d.status)],
        ["Endpoint", (d) => link(`#/endpoints/${seg(d.endpoint_id)}`, d.endpoint_id)],
        ["Attempts", (d) => d.attempt_count],
        ["Updated", (d) => time(d.updated_at)],
      ],
      r.deliveries,
      "It matched no endpoint.",
    ),
  );
}
