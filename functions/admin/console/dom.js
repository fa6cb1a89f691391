// Building the page. Every value reaches it as a text node or an attribute value, never
// as HTML: a payload's `<script>` shows as the characters it is.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "value") el.value = v;
    else if (k === "href" && !/^(#|\/)/.test(String(v))) throw new Error("links stay in the console");
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  put(el, children);
  return el;
}

function put(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// Replaces what `el` shows.
export function show(el, ...children) {
  el.replaceChildren();
  put(el, children);
}

export const link = (href, ...children) => h("a", { href }, ...children);

export function loading(what = "Loading") {
  return h("p", { class: "muted", role: "status" }, `${what}…`);
}

// An error as the API said it, with the fields it names.
export function errorBox(err) {
  const items = (err.errors || []).map((e) => h("li", {}, e.pointer ? `${e.pointer}: ` : "", e.detail || ""));
  return h(
    "div",
    { class: "error", role: "alert" },
    h("strong", {}, err.status ? `Error ${err.status}: ` : "Error: "),
    err.message || String(err),
    items.length ? h("ul", {}, items) : null,
    err.requestId ? h("div", { class: "muted" }, `request id ${err.requestId}`) : null,
  );
}

// How often a view showing something still in flight looks again, and the wait itself.
const REFRESH_MS = 2000;
export const pause = () => new Promise((r) => setTimeout(r, REFRESH_MS));

// Runs `work` for a button: disabled while it runs, its error shown in `out`.
export function action(label, work, { cls, out } = {}) {
  const b = h("button", { type: "button", class: cls }, label);
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await work(b);
    } catch (err) {
      if (out) show(out, errorBox(err));
      else b.after(errorBox(err));
    } finally {
      b.disabled = false;
    }
  });
  return b;
}

// Asks first, in a modal dialog; resolves true only for the confirming button.
export function confirm(message, yes = "Confirm", { danger = true, input } = {}) {
  return new Promise((resolve) => {
    const field = input ? h("input", { type: "text", "aria-label": input, placeholder: input }) : null;
    const dlg = h(
      "dialog",
      { "aria-label": message },
      h("p", {}, message),
      field ? h("label", {}, input, field) : null,
      h(
        "div",
        { class: "actions" },
        h("button", { type: "button", class: danger ? "danger" : "primary", onclick: () => done(true) }, yes),
        h("button", { type: "button", onclick: () => done(false) }, "Cancel"),
      ),
    );
    function done(ok) {
      dlg.close();
      dlg.remove();
      resolve(ok ? (field ? field.value : true) : false);
    }
    dlg.addEventListener("cancel", () => done(false));
    document.body.append(dlg);
    dlg.showModal();
  });
}

// A value shown once (a secret), with a button that copies it.
export function secretBox(label, value) {
  const code = h("code", { "data-secret": "" }, value);
  const copy = h("button", { type: "button" }, "Copy");
  copy.addEventListener("click", async () => {
    try {
      await navigator.clipboard.writeText(value);
      copy.textContent = "Copied";
    } catch {
      // No clipboard (an insecure origin): select it for the user to copy.
      getSelection().selectAllChildren(code);
      copy.textContent = "Selected: press Ctrl+C";
    }
  });
  return h("div", { class: "notice", role: "status" }, h("p", {}, label), h("div", { class: "secret" }, code, copy));
}

export function badge(status) {
  const s = String(status ?? "");
  return h("span", { class: `badge b-${s.replace(/[^a-z_-]/g, "")}` }, s || "—");
}

// "2026-12-06 13:25:53 UTC", as stored: the console speaks UTC, as the API does.
export function time(ts) {
  if (!ts) return "—";
  const d = new Date(ts);
  if (Number.isNaN(d.getTime())) return String(ts);
  return `${d.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

// "2 of 8"; past its policy's count when an operator asked for more (Retry).
export const attemptCount = (d) =>
  d.attempt_count <= d.max_attempts ? `${d.attempt_count} of ${d.max_attempts}` : `${d.attempt_count} (${d.max_attempts} by its policy, the rest asked for)`;

export const ms = (n) => (n === null || n === undefined ? "—" : `${n} ms`);
export const pct = (r) => (r === null || r === undefined ? "—" : `${(r * 100).toFixed(1)} %`);

// Name/value pairs; values are text or nodes.
export function props(pairs) {
  return h("dl", { class: "props" }, pairs.filter(Boolean).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

// A table: columns are [heading, row => cell].
export function table(columns, rows, empty = "Nothing here yet.") {
  if (!rows.length) return h("p", { class: "muted" }, empty);
  return h(
    "div",
    { class: "scroll" },
    h(
      "table",
      {},
      h("thead", {}, h("tr", {}, columns.map(([t]) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((r) => h("tr", {}, columns.map(([, f]) => h("td", { class: "wrap" }, f(r)))))),
    ),
  );
}

export const json = (v) => h("pre", { tabindex: "0" }, JSON.stringify(v, null, 2));

// A labelled input.
export function field(label, attrs) {
  return h("label", {}, label, h(attrs.tag || "input", { ...attrs, tag: undefined }));
}

// An endpoint's `ordering`, to choose.
export function orderingField(current) {
  const choices = [["none", "None"], ["run", "By run (each run's events in order)"], ["thread", "By thread"]];
  return h("label", {}, "Ordering",
    h("select", { name: "ordering" }, choices.map(([v, l]) => h("option", { value: v, selected: v === current }, l))));
}

// A form's named values, trimmed; empty ones left out.
export function values(form) {
  const out = {};
  for (const [k, v] of new FormData(form)) {
    const s = String(v).trim();
    if (s) out[k] = s;
  }
  return out;
}

// <input type=datetime-local> holds UTC here (the page says so): to RFC 3339.
export function utc(local) {
  return local ? `${local.length === 16 ? `${local}:00` : local}Z` : undefined;
}
