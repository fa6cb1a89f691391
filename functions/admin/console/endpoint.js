// One endpoint: what it is, its last 24 hours, and what can be done to it (edit,
// disable or enable, rotate its secret, send a test, diagnose, recover, delete).

import { call, get, post, query, seg } from "./api.js";
import { action, badge, confirm, errorBox, field, h, json, orderingField, link, loading, ms, pct, props, secretBox, show, time, utc, values } from "./dom.js";
import { typesOf } from "./endpoints.js";
import { endpointState } from "./overview.js";

export async function endpointPage(view, ctx) {
  show(view, h("h1", {}, "Endpoint"), loading());
  const path = `/v1/endpoints/${seg(ctx.id)}`;
  const [{ body: e, etag }, stats] = await Promise.all([call("GET", path), get(`${path}/stats${query({ hours: 24 })}`)]);
  const out = h("div", { "aria-live": "polite" });
  const reload = () => endpointPage(view, ctx);
  const s = stats.stats;

  const edit = h(
    "form",
    { class: "grid card", "aria-label": "Edit endpoint" },
    field("Name", { name: "name", value: e.name, required: true, maxlength: 128 }),
    field("URL", { name: "url", type: "url", value: e.url, required: true }),
    field("Event types", { name: "event_types", value: e.event_types.join(", ") }),
    field("Timeout (s)", { name: "timeout_seconds", type: "number", min: 1, max: 30, value: e.timeout_seconds }),
    field("Rate limit (requests/s, empty: none)", { name: "rate_limit_per_second", type: "number", min: 1, max: 1000, value: e.rate_limit_per_second ?? "" }),
    field("Largest body sent whole (bytes; larger: a data URL)", { name: "max_body_bytes", type: "number", min: 65536, max: 5308416, value: e.max_body_bytes }),
    orderingField(e.ordering),
    h("button", { type: "submit", class: "primary" }, "Save changes"),
  );
  edit.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = values(edit);
    const body = {
      name: v.name,
      url: v.url,
      event_types: typesOf(v.event_types),
      timeout_seconds: Number(v.timeout_seconds),
      rate_limit_per_second: v.rate_limit_per_second ? Number(v.rate_limit_per_second) : null,
      max_body_bytes: v.max_body_bytes ? Number(v.max_body_bytes) : null,
      ordering: v.ordering,
    };
    // Headers hold the receiver's credentials and are shown masked: a new URL keeps
    // them only when given again, which this form cannot, so it clears them.
    if (v.url !== e.url && Object.keys(e.headers || {}).length) {
      if (!(await confirm("A new URL drops the endpoint's custom headers (their values are never shown). Go on?", "Change the URL"))) return;
      body.headers = {};
    }
    try {
      await call("PATCH", path, { body, headers: { "if-match": etag } });
      reload();
    } catch (err) {
      show(out, errorBox(err));
    }
  });

  // A status change does not depend on the fields read: it applies to the current version.
  const setStatus = async (body) => {
    const now = await call("GET", path);
    await call("PATCH", path, { body, headers: { "if-match": now.etag } });
  };
  const toggle =
    e.status === "active"
      ? action(
          "Disable",
          async () => {
            const reason = await confirm("Disable this endpoint? Its deliveries end as failed until it is enabled again.", "Disable", { input: "Reason (shown with the endpoint)" });
            if (reason === false) return;
            await setStatus({ status: "disabled", disabled_reason: reason || "disabled in the console" });
            reload();
          },
          { cls: "danger", out },
        )
      : action(
          "Enable",
          async () => {
            await setStatus({ status: "active" });
            reload();
          },
          { cls: "primary", out },
        );

  const since = field("From (UTC)", { type: "datetime-local", name: "since", required: true });
  const until = field("Until (UTC, empty: now)", { type: "datetime-local", name: "until" });
  const recover = h("form", { class: "grid card", "aria-label": "Recover" }, since, until, h("button", { type: "submit" }, "Send the failed ones again"));
  recover.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const v = values(recover);
    if (!(await confirm("Send again every failed delivery of this endpoint created in that range?", "Recover", { danger: false }))) return;
    try {
      const r = await post(`${path}/recover`, { since: utc(v.since), until: utc(v.until) });
      show(out, h("div", { class: "notice", role: "status" }, `${r.recovered} deliveries sent again, ${r.skipped} skipped${r.more ? "; there are more: run it again" : ""}.`));
    } catch (err) {
      show(out, errorBox(err));
    }
  });

  show(
    view,
    h("h1", {}, e.name, " ", endpointState(e)),
    props([
      ["Id", e.id],
      ["URL", e.url],
      ["Tenant", e.tenant_id],
      ["Event types", e.event_types.join(", ")],
      ["Status", e.status === "disabled" ? `disabled: ${e.disabled_reason ?? ""}` : e.failing_since ? `failing since ${time(e.failing_since)}` : "active"],
      ["Lane", e.lane],
      ["Attempts", e.retry_schedule ? `${e.retry_schedule.length + 1} (own schedule)` : e.max_attempts],
      ["Timeout", `${e.timeout_seconds} s`],
      ["Custom headers", Object.keys(e.headers || {}).join(", ") || "—"],
      ["Secret", e.previous_secrets_expire_at?.length ? `rotated; the old one signs until ${time(e.previous_secrets_expire_at.at(-1))}` : "—"],
      ["Last 24 h", `${s.attempts} attempts, ${s.failed_attempts} failed; ${pct(s.success_rate)} delivered; p95 ${ms(s.p95_response_ms)}`],
      ["Updated", time(e.updated_at)],
    ]),
    h(
      "div",
      { class: "actions" },
      link(`#/deliveries${query({ endpoint_id: e.id })}`, "Its deliveries"),
      action(
        "Send a test",
        async () => {
          show(out, loading("Sending a test event"));
          const r = await post(`${path}/test`, {});
          show(
            out,
            h(
              "div",
              { class: r.success ? "notice" : "error", role: "status" },
              h("p", {}, badge(r.success ? "ok" : "bad"), ` ${r.status ? `HTTP ${r.status}` : `${r.error}: ${r.message}`} in ${r.latency_ms} ms`),
              r.body ? [h("p", {}, "It answered:"), h("pre", {}, r.body)] : null,
            ),
          );
        },
        { out },
      ),
      action(
        "Diagnose",
        async () => {
          show(out, loading("Looking at DNS, the network and the last 24 hours"));
          const d = await get(`${path}/diagnose`);
          show(out, h("div", { class: "card" }, h("h2", {}, "Diagnosis"), h("ul", {}, d.advice.map((a) => h("li", {}, a))), json(d)));
        },
        { out },
      ),
      action(
        "Rotate secret",
        async () => {
          if (!(await confirm("Rotate the signing secret? The old one keeps signing beside the new one for 24 hours.", "Rotate", { danger: false }))) return;
          const r = await post(`${path}/rotate-secret`, {});
          show(out, secretBox("The new secret, shown only this once: give it to the receiver.", r.secret));
        },
        { out },
      ),
      toggle,
      action(
        "Delete",
        async () => {
          if (!(await confirm(`Delete endpoint ${e.name}? It gets nothing more.`, "Delete endpoint"))) return;
          await call("DELETE", path);
          location.hash = "#/endpoints";
        },
        { cls: "danger", out },
      ),
    ),
    out,
    h("h2", {}, "Edit"),
    edit,
    h("h2", {}, "Recover a time range"),
    h("p", { class: "muted" }, "Sends again this endpoint's failed deliveries created in the range (up to 1,000 a time)."),
    recover,
  );
}
