//! What is removed from a LangGraph run before it fans out, anywhere in the run, by
//! rule rather than by a list of places:
//!
//! 1. **Hookline's own keys** never leave: any string holding one has it replaced,
//!    wherever it is (the Platform repeats the webhook URL it posted to, `?token=` and
//!    all, and callers copy it into `metadata` or a run's input).
//! 2. **Credentials inside URLs**: in every string, each `scheme://…` URL loses its
//!    user and password and the values of its query string (`?token=REDACTED`); the
//!    rest of the URL stays, so a reader still sees where it pointed.
//! 3. **Secret-looking names**: a string (or strings in a list) under a member whose
//!    name has a word from `SECRET_WORDS`, or ends in one of `SECRET_ENDINGS` when its
//!    words run together (`apikey`, `accessToken`), is replaced. Names split into words
//!    at `_`, `-`, `.`, spaces and lowerCase-to-Upper changes. Only strings: numbers
//!    such as `total_tokens` stay.
//!
//! The run's event reports what was removed as JSON pointers (`redacted`), never the
//! values.

use serde_json::{Map, Value};

pub const REDACTED: &str = "[redacted]";
/// What a query string's values become (URL-safe, unlike `REDACTED`).
pub const REDACTED_QUERY_VALUE: &str = "REDACTED";

/// Words that make a member's name secret-looking.
pub const SECRET_WORDS: &[&str] = &[
    "key",
    "keys",
    "apikey",
    "token",
    "secret",
    "secrets",
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "credential",
    "credentials",
    "auth",
    "authorization",
    "bearer",
    "cookie",
    "session",
    "jwt",
    "dsn",
    "private",
    "signature",
];
/// Endings that do the same when a name's words run together (`apikey`, `clientsecret`).
pub const SECRET_ENDINGS: &[&str] = &[
    "key",
    "token",
    "secret",
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "credential",
    "credentials",
    "jwt",
    "dsn",
    "signature",
    "cookie",
];

/// Names that hold a secret wherever these stand in them, even run together with other
/// words (`sessionid`, `authheader`, `secretvalue`).
pub const SECRET_PARTS: &[&str] = &[
    "secret",
    "password",
    "passwd",
    "passphrase",
    "credential",
    "apikey",
    "accesskey",
    "privatekey",
    "accesstoken",
    "refreshtoken",
    "sessionid",
    "authheader",
];

/// Removes what must not leave from `v`, and says where (JSON pointers, in order).
pub fn redact(v: &mut Value, own_keys: &[&str]) -> Vec<String> {
    // Each key as it is and as a URL or form would carry it.
    let mut needles: Vec<String> = Vec::new();
    for k in own_keys.iter().filter(|k| !k.is_empty()) {
        let encoded: String = url::form_urlencoded::byte_serialize(k.as_bytes()).collect();
        let escaped = k.replace('%', "%25");
        for n in [k.to_string(), encoded, escaped] {
            if !needles.contains(&n) {
                needles.push(n);
            }
        }
    }
    let needles: Vec<&str> = needles.iter().map(String::as_str).collect();
    let mut removed = Vec::new();
    walk(v, &mut String::new(), false, &needles, &mut removed);
    removed
}

/// `secret_name`: `v` is (or is inside) a member whose name looks secret, so every
/// string in it goes.
fn walk(v: &mut Value, at: &mut String, secret_name: bool, own_keys: &[&str], removed: &mut Vec<String>) {
    match v {
        Value::String(s) if secret_name && !s.is_empty() => {
            *s = REDACTED.to_owned();
            removed.push(at.clone());
        }
        Value::String(s) => {
            if let Some(clean) = clean_string(s, own_keys) {
                *s = clean;
                removed.push(at.clone());
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = at.len();
                at.push_str(&format!("/{i}"));
                // A list under a secret-looking name holds secrets too (`api_keys`).
                walk(item, at, secret_name, own_keys, removed);
                at.truncate(len);
            }
        }
        Value::Object(members) => walk_object(members, at, secret_name, own_keys, removed),
        _ => {}
    }
}

fn walk_object(
    members: &mut Map<String, Value>,
    at: &mut String,
    secret_name: bool,
    own_keys: &[&str],
    removed: &mut Vec<String>,
) {
    // A key in a member's name is a key too: the member is renamed.
    let named: Vec<String> = members
        .keys()
        .filter(|n| own_keys.iter().any(|k| !k.is_empty() && n.contains(k)))
        .cloned()
        .collect();
    for name in named {
        let Some(value) = members.remove(&name) else {
            continue;
        };
        let mut clean = own_keys
            .iter()
            .filter(|k| !k.is_empty())
            .fold(name, |n, k| n.replace(k, REDACTED));
        while members.contains_key(&clean) {
            clean.push('_');
        }
        removed.push(format!("{at}{}", crate::api::pointer("", &clean)));
        members.insert(clean, value);
    }
    for (name, value) in members.iter_mut() {
        let len = at.len();
        at.push_str(&crate::api::pointer("", name));
        walk(value, at, secret_name || looks_secret(name), own_keys, removed);
        at.truncate(len);
    }
}

/// The string without Hookline's keys and URL credentials; `None` when nothing changed.
fn clean_string(s: &str, own_keys: &[&str]) -> Option<String> {
    let mut out: Option<String> = None;
    for key in own_keys.iter().filter(|k| !k.is_empty()) {
        let current = out.as_deref().unwrap_or(s);
        if current.contains(key) {
            out = Some(current.replace(key, REDACTED));
        }
    }
    let current = out.as_deref().unwrap_or(s);
    if current.contains("://")
        && let Some(clean) = without_url_credentials(current)
    {
        out = Some(clean);
    }
    out
}

/// Every `scheme://…` URL in `s` without its userinfo and the values of its query and
/// fragment; `None` when there was nothing to remove.
fn without_url_credentials(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    while let Some(sep) = rest.find("://") {
        // The scheme runs back from `://` over letters, digits, `+`, `-` and `.`.
        let scheme_start = rest[..sep]
            .char_indices()
            .rev()
            .take_while(|(_, c)| c.is_ascii_alphanumeric() || "+-.".contains(*c))
            .last()
            .map_or(sep, |(i, _)| i);
        let end = rest[sep..]
            .find(|c: char| c.is_whitespace() || "\"'<>`".contains(c))
            .map_or(rest.len(), |i| sep + i);
        let candidate = &rest[scheme_start..end];
        out.push_str(&rest[..scheme_start]);
        match clean_url(candidate) {
            Some(clean) => {
                out.push_str(&clean);
                changed = true;
            }
            None => out.push_str(candidate),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    changed.then_some(out)
}

fn clean_url(candidate: &str) -> Option<String> {
    let Ok(mut url) = url::Url::parse(candidate) else {
        return scrub_unparsed(candidate);
    };
    let has_user = !url.username().is_empty() || url.password().is_some();
    let query = url.query().map(redact_pairs);
    let fragment = url.fragment().map(redact_pairs);
    let pairs_changed = query.as_ref().is_some_and(|q| Some(q.as_str()) != url.query())
        || fragment
            .as_ref()
            .is_some_and(|f| Some(f.as_str()) != url.fragment());
    if !has_user && !pairs_changed {
        return None;
    }
    if has_user {
        // A URL without a host cannot hold a user; one with a host always can.
        let _ = url.set_password(None);
        let _ = url.set_username("");
    }
    url.set_query(query.as_deref());
    url.set_fragment(fragment.as_deref());
    Some(url.to_string())
}

/// A URL the parser refuses (several hosts, as `mongodb://u:pw@h1,h2/db`; a password
/// with a `/`): cut by hand, erring on removing too much. The userinfo ends at the last
/// `@` before the query.
fn scrub_unparsed(candidate: &str) -> Option<String> {
    let after = candidate.find("://")? + 3;
    let (head, fragment) = candidate
        .split_once('#')
        .map_or((candidate, None), |(h, f)| (h, Some(f)));
    let (head, query) = head.split_once('?').map_or((head, None), |(h, q)| (h, Some(q)));
    let mut out = candidate[..after.min(head.len())].to_owned();
    let rest = head.get(after..).unwrap_or("");
    let without_user = rest.rfind('@').map_or(rest, |i| &rest[i + 1..]);
    out.push_str(without_user);
    if let Some(q) = query {
        out.push('?');
        out.push_str(&redact_pairs(q));
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(&redact_pairs(f));
    }
    (out != candidate).then_some(out)
}

/// `a=1&b=&c` → `a=REDACTED&b=&c`: every value that is there replaced, the names kept.
fn redact_pairs(pairs: &str) -> String {
    pairs
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !v.is_empty() => format!("{k}={REDACTED_QUERY_VALUE}"),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Whether a member's name says it holds a secret (see the module's rule 3).
pub fn looks_secret(name: &str) -> bool {
    let words = words(name);
    if words.iter().any(|w| SECRET_WORDS.contains(&w.as_str())) {
        return true;
    }
    let joined: String = words.concat();
    SECRET_ENDINGS.iter().any(|e| joined.ends_with(e)) || SECRET_PARTS.iter().any(|p| joined.contains(p))
}

/// `OPENAI_API_KEY` → openai, api, key; `accessToken` → access, token.
fn words(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut prev_lower = false;
    for c in name.chars() {
        if !c.is_alphanumeric() {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            prev_lower = false;
            continue;
        }
        if c.is_uppercase() && prev_lower && !word.is_empty() {
            out.push(std::mem::take(&mut word));
        }
        prev_lower = c.is_lowercase() || c.is_ascii_digit();
        word.extend(c.to_lowercase());
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[cfg(test)]
mod tests;
