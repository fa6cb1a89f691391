// One delivery with every attempt: when, how long, what the receiver answered (as
// text), the error, the next attempt; and Retry. It refreshes itself while open.

import { get, post, query, seg } from "./api.js";
import { action, attemptCount, badge, h, link, loading, pause, props, show, table, time } from "./dom.js";

export async function deliveryPage(view, ctx) {
  show(view, h("h1", {}, "Delivery"), loading());
  const path = `/v1/deliveries/${seg(ctx.id)}`;
  let d = await get(path);
  const out = h("div", { "aria-live": "polite" });
  const body = h("div");
  show(
    view,
    h("h1", {}, "Delivery ", h("span", { class: "muted" }, d.id)),
    h(
      "div",
      { class: "actions" },
      // An expired or superseded delivery ended as its sender asked: not sent again.
      d.status === "expired" || d.status === "superseded"
        ? null
        : action(
            "Retry now",
            async () => {
              await post(`${path}/retry`, {});
              show(out, h("div", { class: "notice", role: "status" }, "Sent to the queue for one more attempt."));
              watch();
            },
            { cls: "primary", out },
          ),
      link(`#/events/${seg(d.event_id)}${query({ tenant_id: ctx.operator ? d.tenant_id : "" })}`, "Its event"),
      link(`#/endpoints/${seg(d.endpoint_id)}`, "Its endpoint"),
    ),
    out,
    body,
  );
  let watching = false;
  async function watch() {
    if (watching) return;
    watching = true;
    try {
      for (;;) {
        await pause();
        if (!view.isConnected) return;
        d = await get(path);
        render(body, d);
        if (d.status !== "pending" && d.status !== "retrying") return;
      }
    } finally {
      watching = false;
    }
  }
  render(body, d);
  if (d.status === "pending" || d.status === "retrying") watch();
}

function render(el, d) {
  const attempts = [...d.attempts].sort((a, b) => b.number - a.number);
  show(
    el,
    props([
      ["Status", badge(d.status)],
      ["Event", `${d.event_type} · ${d.event_id}`],
      ["Endpoint", d.endpoint_id],
      ["Tenant", d.tenant_id],
      ["Attempts", attemptCount(d)],
      ["Next attempt", d.status === "pending" || d.status === "retrying" ? time(d.next_attempt_at) : "none: it has ended"],
      d.failure_reason ? [d.status === "failed" ? "Why it failed" : "Why it ended", d.failure_reason] : null,
      ["Created", time(d.created_at)],
      ["Updated", time(d.updated_at)],
    ]),
    h("h2", {}, "Attempts"),
    table(
      [
        ["#", (a) => a.number],
        ["At", (a) => time(a.started_at)],
        ["Result", (a) => (a.kind === "response" ? badge(a.status >= 200 && a.status < 300 ? "ok" : "bad") : badge("bad"))],
        ["Status", (a) => (a.kind === "response" ? `HTTP ${a.status}` : a.error)],
        ["Latency", (a) => `${a.duration_ms} ms`],
        // The receiver's answer (its first KiB) or the error: text, whatever it holds.
        ["Answer or error", (a) => (a.kind === "response" ? (a.body ? h("pre", {}, a.body) : "(empty)") : a.message)],
      ],
      attempts,
      "No attempt yet.",
    ),
  );
}
