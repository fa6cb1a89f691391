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
fn urls_after_any_character_and_urls_the_parser_refuses_are_scrubbed_too() {
    let mut v = json!({
        "zh": "链接：https://u:p@h.example.com/x",
        "fr": "«https://h.example.com/?token=t1»",
        "odd": "é://x",
        "mongo": "mongodb://app:mongo-pw@h1:27017,h2:27017/db?authSource=admin",
        "slash": "postgres://app:pa/ss@db/app",
        "frag": "https://app.example.com/cb#access_token=frag-tok&state=1",
    });
    let removed = redact(&mut v, &[]);
    let text = v.to_string();
    for secret in ["u:p@", "t1", "mongo-pw", "pa/ss", "frag-tok"] {
        assert!(!text.contains(secret), "{secret}: {text}");
    }
    assert_eq!(v["zh"], "链接：https://h.example.com/x");
    assert_eq!(v["odd"], "é://x");
    assert_eq!(v["mongo"], "mongodb://h1:27017,h2:27017/db?authSource=REDACTED");
    assert_eq!(removed.len(), 5, "{removed:?}");
}

#[test]
fn everything_under_a_secret_looking_name_goes_and_run_together_names_count() {
    let mut v = json!({
        "credentials": {"openai": "sk-1", "nested": ["sk-2"]},
        "sessionid": "s-3",
        "authHeader": "Bearer s-4",
        "secretvalue": "s-5",
    });
    redact(&mut v, &[]);
    let text = v.to_string();
    for secret in ["sk-1", "sk-2", "s-3", "s-4", "s-5"] {
        assert!(!text.contains(secret), "{secret}: {text}");
    }
}

#[test]
fn a_key_percent_encoded_is_still_a_key() {
    let mut v = json!({"note": "see token=k%2By%2Fz%3D there", "raw": "k+y/z="});
    redact(&mut v, &["k+y/z="]);
    let text = v.to_string();
    assert!(
        !text.contains("k%2By%2Fz%3D") && !text.contains("k+y/z="),
        "{text}"
    );
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
    assert_eq!(v["auth"], json!({"user": REDACTED, "bearer": REDACTED}));
    assert_eq!(
        removed,
        [
            "/api_keys/0",
            "/api_keys/1",
            "/auth/bearer",
            "/auth/user",
            "/token"
        ]
    );
}
