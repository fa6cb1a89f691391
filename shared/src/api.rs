//! The HTTP API's common rules, on plain `http` types: the key a request presents
//! (`access` says whose it is), JSON bodies and their errors, problem responses. Both HTTP functions use these, so a rule
//! about requests lives here once.

use crate::problem::{self, FieldProblem, Problem};
use crate::strict_json::StrictJsonError;
use http::{HeaderMap, Response, StatusCode, header};
use serde::Serialize;
use serde_json::{Map, Value};

pub fn json<T: Serialize>(status: u16, body: &T) -> Response<String> {
    let text = serde_json::to_string(body).unwrap_or_default();
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::OK))
        .header(header::CONTENT_TYPE, "application/json")
        .body(text)
        .unwrap_or_default()
}

pub fn problem(p: &Problem) -> Response<String> {
    let mut r = Response::builder()
        .status(StatusCode::from_u16(p.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .header(header::CONTENT_TYPE, problem::CONTENT_TYPE);
    if p.status == 401 {
        r = r.header(header::WWW_AUTHENTICATE, "Bearer");
    }
    if let Some(secs) = p.retry_after {
        r = r.header(header::RETRY_AFTER, secs.get());
    }
    r.body(p.to_json()).unwrap_or_default()
}

pub fn empty(status: u16) -> Response<String> {
    Response::builder()
        .status(StatusCode::from_u16(status).unwrap_or(StatusCode::NO_CONTENT))
        .body(String::new())
        .unwrap_or_default()
}

/// Runs a route in a span named for the request, and turns its problem (if any)
/// into the response, stamped with the request id for the logs.
pub async fn serve<F>(
    method: &http::Method,
    path: &str,
    request_id: Option<String>,
    route: F,
) -> Response<String>
where
    F: std::future::Future<Output = Result<Response<String>, Problem>>,
{
    use tracing::Instrument;
    let span = tracing::info_span!(
        "request",
        method = %method,
        path,
        request_id = request_id.as_deref().unwrap_or(""),
    );
    match route.instrument(span).await {
        Ok(r) => r,
        Err(p) => problem(&p.with_request_id(request_id)),
    }
}

/// The key a request presents: `Authorization: Bearer K`, else `x-api-key: K`.
pub fn presented_key(headers: &HeaderMap) -> Option<String> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    crate::auth::presented(get("authorization"), get("x-api-key")).map(str::to_owned)
}

/// Reads a JSON body: within `limit` bytes, well-formed, and not declared as a
/// media type that cannot be JSON (XML, multipart, …).
/// A syntax error says where it is.
pub fn json_body(headers: &HeaderMap, body: &[u8], limit: usize) -> Result<Value, Problem> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        let media = ct.split(';').next().unwrap_or("").trim();
        // JSON under text/plain or curl's default form type is still JSON: accepted.
        let json_like = media == "application/json"
            || media.ends_with("+json")
            || media == "text/plain"
            || media == "application/x-www-form-urlencoded"
            || media.is_empty();
        if !json_like {
            return Err(Problem::unsupported_media_type(format!(
                "send `Content-Type: application/json`, not `{media}`"
            )));
        }
    }
    if body.len() > limit {
        return Err(Problem::too_large(limit));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Problem::bad_request("the body is empty; send a JSON object"));
    }
    crate::strict_json::parse(body).map_err(|e| match e {
        // JSON is UTF-8 (RFC 8259 §8.1): other bytes are not JSON, whatever they hold.
        StrictJsonError::Syntax(_) | StrictJsonError::NotUtf8 { .. } => Problem::invalid_json(e.to_string()),
        StrictJsonError::DuplicateKey { pointer } => Problem::validation(
            "the body names a key twice, so it could be read two ways",
            vec![FieldProblem::new(
                pointer,
                "appears more than once in its object; send each key once",
            )],
        ),
    })
}

/// Like `json_body`, but an empty body reads as `{}` (for routes whose fields are all optional).
pub fn optional_json_body(headers: &HeaderMap, body: &[u8], limit: usize) -> Result<Value, Problem> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Map::new()));
    }
    json_body(headers, body, limit)
}

/// A JSON pointer segment, escaped as RFC 6901 says.
pub fn pointer(base: &str, key: &str) -> String {
    format!("{base}/{}", key.replace('~', "~0").replace('/', "~1"))
}

/// The value as an object, or a field problem at `at`.
pub fn object<'a>(v: &'a Value, at: &str, errors: &mut Vec<FieldProblem>) -> Option<&'a Map<String, Value>> {
    let o = v.as_object();
    if o.is_none() {
        errors.push(FieldProblem::new(at, "must be a JSON object"));
    }
    o
}

/// Refuses every field not in `allowed`, naming the allowed ones.
pub fn refuse_unknown_fields(
    obj: &Map<String, Value>,
    allowed: &[&str],
    at: &str,
    errors: &mut Vec<FieldProblem>,
) {
    for k in obj.keys().filter(|k| !allowed.contains(&k.as_str())) {
        let detail = if allowed.is_empty() {
            "unknown field; this takes no fields".to_owned()
        } else {
            format!("unknown field; the allowed fields are {}", allowed.join(", "))
        };
        errors.push(FieldProblem::new(pointer(at, k), detail));
    }
}

/// An optional string field; a non-string is a field problem.
pub fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    at: &str,
    errors: &mut Vec<FieldProblem>,
) -> Option<&'a str> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(_) => {
            errors.push(FieldProblem::new(pointer(at, key), "must be a string"));
            None
        }
    }
}

/// A required string field.
pub fn req_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    at: &str,
    errors: &mut Vec<FieldProblem>,
) -> Option<&'a str> {
    let v = opt_str(obj, key, at, errors);
    if v.is_none() && obj.get(key).is_none_or(Value::is_null) {
        errors.push(FieldProblem::new(pointer(at, key), "is required"));
    }
    v
}

/// The query string's pairs, decoded.
pub fn query(uri: &http::Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_syntax_errors_say_where() {
        let p = json_body(&HeaderMap::new(), b"{\"a\": 1,\n \"b\" 2}", 100).unwrap_err();
        assert_eq!(p.status, 400);
        assert!(p.detail.starts_with("line 2, column 6"), "{}", p.detail);
    }

    #[test]
    fn bodies_over_the_limit_or_of_another_type_are_refused() {
        assert_eq!(json_body(&HeaderMap::new(), b"{}", 1).unwrap_err().status, 413);
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            "multipart/form-data; boundary=x".parse().unwrap(),
        );
        assert_eq!(json_body(&h, b"{}", 10).unwrap_err().status, 415);
        h.insert(header::CONTENT_TYPE, "text/plain".parse().unwrap());
        assert!(json_body(&h, b"{}", 10).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            "application/json; charset=utf-8".parse().unwrap(),
        );
        assert!(json_body(&h, b"{}", 10).is_ok());
        assert_eq!(json_body(&HeaderMap::new(), b"  ", 10).unwrap_err().status, 400);
    }

    #[test]
    fn unknown_fields_are_each_named() {
        let v: Value = serde_json::from_str(r#"{"a":1,"x/y":2,"z":3}"#).unwrap();
        let mut errors = Vec::new();
        refuse_unknown_fields(v.as_object().unwrap(), &["a"], "", &mut errors);
        let ptrs: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(ptrs, ["/x~1y", "/z"]);
    }
}
