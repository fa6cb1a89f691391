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

/// Removes what must not leave from `v`, and says where (JSON pointers, in order).
pub fn redact(v: &mut Value, own_keys: &[&str]) -> Vec<String> {
    let mut removed = Vec::new();
    walk(v, &mut String::new(), false, own_keys, &mut removed);
    removed
}

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
        Value::Object(members) => walk_object(members, at, own_keys, removed),
        _ => {}
    }
}

fn walk_object(
    members: &mut Map<String, Value>,
    at: &mut String,
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
        walk(value, at, looks_secret(name), own_keys, removed);
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

/// Every `scheme://…` URL in `s` without its userinfo and query values; `None` when
/// there was nothing to remove.
fn without_url_credentials(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut changed = false;
    while let Some(sep) = rest.find("://") {
        // The scheme runs back from `://` over letters, digits, `+`, `-` and `.`.
        let scheme_start = rest[..sep]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
            .map_or(0, |i| i + 1);
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
    let mut url = url::Url::parse(candidate).ok()?;
    let has_user = !url.username().is_empty() || url.password().is_some();
    let has_query = url.query().is_some_and(|q| !q.is_empty());
    if !has_user && !has_query {
        return None;
    }
    if has_user {
        // A URL without a host cannot hold a user; one with a host always can.
        let _ = url.set_password(None);
        let _ = url.set_username("");
    }
    if has_query {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if v.is_empty() {
                    String::new()
                } else {
                    REDACTED_QUERY_VALUE.to_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    Some(url.to_string())
}

/// Whether a member's name says it holds a secret (see the module's rule 3).
pub fn looks_secret(name: &str) -> bool {
    let words = words(name);
    if words.iter().any(|w| SECRET_WORDS.contains(&w.as_str())) {
        return true;
    }
    let joined: String = words.concat();
    SECRET_ENDINGS.iter().any(|e| joined.ends_with(e))
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
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_looking_names_by_the_documented_pattern() {
        for name in [
            "api_key",
            "OPENAI_API_KEY",
            "accessToken",
            "client_secret",
            "db_password",
            "pwd",
            "jwt",
            "passphrase",
            "private",
            "signature",
            "dsn",
            "SENTRY_DSN",
            "session_cookie",
            "langgraph_auth_user",
            "apikey",
            "x-api-key",
            "Authorization",
            "credentials",
            "refreshtoken",
        ] {
            assert!(looks_secret(name), "{name}");
        }
        for name in [
            "author",
            "total_tokens",
            "input_tokens",
            "thread_id",
            "run_id",
            "status",
            "keyboard",
            "monkey_name",
        ] {
            assert!(!looks_secret(name), "{name}");
        }
    }

    #[test]
    fn credentials_in_any_url_anywhere_lose_their_values_but_not_where_they_pointed() {
        let mut v = json!({
            "database_url": "postgres://admin:hunter2@db.internal:5432/app",
            "sentry": "https://abc123def@o1.ingest.sentry.io/42",
            "context": {"webhook_url": "https://hooks.example.com/in?token=tkn-1&x=1"},
            "note": "called https://api.example.com/v1?key=k-9 and it failed",
            "plain": "https://example.com/docs",
        });
        let removed = redact(&mut v, &[]);
        assert_eq!(v["database_url"], "postgres://db.internal:5432/app");
        assert_eq!(v["sentry"], "https://o1.ingest.sentry.io/42");
        assert_eq!(
            v["context"]["webhook_url"],
            "https://hooks.example.com/in?token=REDACTED&x=REDACTED"
        );
        assert_eq!(
            v["note"],
            "called https://api.example.com/v1?key=REDACTED and it failed"
        );
        assert_eq!(
            v["plain"], "https://example.com/docs",
            "a URL with nothing to remove is left as it was"
        );
        assert_eq!(
            removed,
            ["/context/webhook_url", "/database_url", "/note", "/sentry"]
        );
        let text = v.to_string();
        for secret in ["hunter2", "abc123def", "tkn-1", "k-9"] {
            assert!(!text.contains(secret), "{secret}");
        }
    }

    #[test]
    fn hookline_keys_never_leave_wherever_they_are() {
        let mut v = json!({
            "metadata": {"webhook": "https://h.example.com/v1/langgraph/runs?token=the-ingest-key-123"},
            "kwargs": {"input": {"messages": [{"content": "my key is the-admin-key-4567, keep it"}]}},
        });
        let removed = redact(&mut v, &["the-ingest-key-123", "the-admin-key-4567"]);
        let text = v.to_string();
        assert!(
            !text.contains("the-ingest-key-123") && !text.contains("the-admin-key-4567"),
            "{text}"
        );
        assert_eq!(
            v["kwargs"]["input"]["messages"][0]["content"],
            "my key is [redacted], keep it"
        );
        assert_eq!(removed, ["/kwargs/input/messages/0/content", "/metadata/webhook"]);

        let mut named = json!({"by_key": {"the-ingest-key-123": 1}});
        let removed = redact(&mut named, &["the-ingest-key-123"]);
        assert_eq!(named, json!({"by_key": {"[redacted]": 1}}));
        assert_eq!(removed, ["/by_key/[redacted]"]);
    }

    #[test]
    fn only_strings_are_redacted_so_token_counts_stay() {
        let mut v = json!({
            "token_usage": {"total_tokens": 12, "prompt_tokens": 5},
            "token": "t-1",
            "api_keys": ["a", "b", 3],
            "password": null,
            "auth": {"user": "u", "bearer": "b-1"},
        });
        let removed = redact(&mut v, &[]);
        assert_eq!(v["token_usage"], json!({"total_tokens": 12, "prompt_tokens": 5}));
        assert_eq!(v["token"], REDACTED);
        assert_eq!(v["api_keys"], json!([REDACTED, REDACTED, 3]));
        assert_eq!(v["password"], Value::Null);
        assert_eq!(v["auth"], json!({"user": "u", "bearer": REDACTED}));
        assert_eq!(removed, ["/api_keys/0", "/api_keys/1", "/auth/bearer", "/token"]);
    }
}
