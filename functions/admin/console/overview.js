// The last 24 hours: attempts by outcome and latency per hour, the totals, and the
// endpoints that fail most first.

import { get, query, seg } from "./api.js";
import { bars, lines } from "./chart.js";
import { badge, h, link, loading, ms, pct, show, table } from "./dom.js";

export async function overview(view, ctx) {
  const tenant = ctx.operator ? ctx.params.get("tenant_id") || "" : "";
  show(view, h("h1", {}, "Overview"), loading("Reading the last 24 hours"));
  const [stats, endpoints] = await Promise.all([
    get(`/v1/stats${query({ hours: 24, by: "hour", tenant_id: tenant })}`),
    get(`/v1/endpoints${query({ limit: 200, tenant_id: tenant })}`),
  ]);
  const t = stats.totals;
  const hours = stats.series.map((s) => `${s.hour.slice(11, 13)}h`);
  const byId = new Map(endpoints.data.map((e) => [e.id, e]));
  // Failing first: failed deliveries, then failed attempts, then the lower success rate.
  const rows = [...stats.endpoints].sort(
    (a, b) =>
      b.stats.failed - a.stats.failed ||
      b.stats.failed_attempts - a.stats.failed_attempts ||
      (a.stats.success_rate ?? 1) - (b.stats.success_rate ?? 1),
  );
  const figure = (n, l) => h("div", { class: "figure" }, h("div", { class: "n" }, n), h("div", { class: "l" }, l));
  show(
    view,
    h("h1", {}, tenant ? `Overview of tenant ${tenant}` : "Overview"),
    h("p", { class: "muted" }, "The last 24 hours, by UTC hour, from the hourly counters."),
    h(
      "div",
      { class: "cards" },
      figure(t.attempts, "attempts"),
      figure(pct(t.success_rate), "deliveries that succeeded"),
      figure(t.delivered, "delivered"),
      figure(t.failed, "failed for good"),
      t.expired || t.superseded ? figure(t.expired + t.superseded, "ended unsent (expired or superseded)") : null,
      figure(ms(t.p50_response_ms), "p50 response (bucket bound)"),
      figure(ms(t.p95_response_ms), "p95 response (bucket bound)"),
    ),
    h(
      "div",
      { class: "charts" },
      bars("Attempts by outcome", hours, [
        { name: "succeeded", cls: "s-ok", values: stats.series.map((s) => s.stats.attempts - s.stats.failed_attempts) },
        { name: "failed", cls: "s-bad", values: stats.series.map((s) => s.stats.failed_attempts) },
      ]),
      lines(
        "Response time",
        hours,
        [
          { name: "p50", cls: "s-p50", values: stats.series.map((s) => s.stats.p50_response_ms) },
          { name: "p95", cls: "s-p95", values: stats.series.map((s) => s.stats.p95_response_ms) },
        ],
        " ms",
      ),
    ),
    h("h2", {}, "Endpoints, failing first"),
    table(
      [
        ["Endpoint", (r) => link(`#/endpoints/${seg(r.endpoint_id)}`, r.name)],
        ["Status", (r) => endpointState(byId.get(r.endpoint_id))],
        ["Attempts", (r) => r.stats.attempts],
        ["Failed attempts", (r) => r.stats.failed_attempts],
        ["Delivered", (r) => r.stats.delivered],
        ["Failed", (r) => r.stats.failed],
        ["Success", (r) => pct(r.stats.success_rate)],
        ["p95", (r) => ms(r.stats.p95_response_ms)],
        ["", (r) => link(`#/deliveries${query({ endpoint_id: r.endpoint_id, status: "failed" })}`, "failed deliveries")],
      ],
      rows,
      "No endpoints yet.",
    ),
  );
}

// active, disabled, or failing (active, but failing since some time).
export function endpointState(e) {
  if (!e) return "—";
  if (e.status === "active" && e.failing_since) return badge("failing");
  return badge(e.status);
}
