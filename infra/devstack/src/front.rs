//! The local stack's front door: passes every request to `cargo lambda watch` as it
//! came, with one change. cargo-lambda's watch server reads a body declared as text
//! (`text/*`, `application/json`, or no type) into a string, and answers a body that is
//! not UTF-8 with its own `text/plain` 500 before any function runs; API Gateway hands
//! such a body to the function, base64-encoded. So for a body that is not UTF-8, the
//! front writes the media type with a capital first letter (`Application/json`: the
//! same type, RFC 9110 §8.3.1, which the watch server's case-sensitive test does not
//! take for text) and the function answers for itself, as it does on AWS.
//!
//! And one repair: now and then the watch server loses an invocation under a burst of
//! requests (a page loading its scripts), and answers that request with its own
//! `text/plain` 500 before any function ran. API Gateway does not do that; a GET or
//! HEAD so answered is sent once more (safe: it changes nothing), and the front logs
//! both answers. A function's own error is `application/problem+json` and passes as is.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::sync::Arc;

struct Front {
    upstream: String,
    client: reqwest::Client,
}

/// Serves `listen` (loopback only) in front of `upstream` until the process ends.
pub async fn serve(listen: std::net::SocketAddr, upstream: &str) -> std::io::Result<()> {
    if !listen.ip().is_loopback() {
        return Err(std::io::Error::other("the front listens on loopback only"));
    }
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let front = Arc::new(Front {
        upstream: upstream.trim_end_matches('/').to_owned(),
        // Passes answers on as they are: a redirect is the client's to follow or not.
        client: reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(std::io::Error::other)?,
    });
    loop {
        let (stream, _) = listener.accept().await?;
        let front = front.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let front = front.clone();
                async move { Ok::<_, std::convert::Infallible>(front.pass(req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// The content type to send on, when the watch server would refuse the body as is.
pub fn content_type_for(content_type: Option<&str>, body: &[u8]) -> Option<String> {
    if body.is_empty() || std::str::from_utf8(body).is_ok() {
        return None;
    }
    let declared = content_type.unwrap_or("application/json");
    let read_as_text = declared.starts_with("text/") || declared.starts_with("application/json");
    if !read_as_text {
        return None;
    }
    let mut chars = declared.chars();
    let first = chars.next()?.to_ascii_uppercase();
    Some(std::iter::once(first).chain(chars).collect())
}

impl Front {
    async fn pass(&self, req: hyper::Request<hyper::body::Incoming>) -> hyper::Response<Full<Bytes>> {
        let (parts, body) = req.into_parts();
        let body = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(e) => return answer(400, &format!("devstack front: could not read the request: {e}")),
        };
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut headers = parts.headers;
        let declared = headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if let Some(ct) = content_type_for(declared, &body)
            && let Ok(v) = http::HeaderValue::from_str(&ct)
        {
            headers.insert(http::header::CONTENT_TYPE, v);
        }
        headers.remove(http::header::HOST);
        let url = format!("{}{path}", self.upstream);
        let idempotent = parts.method == http::Method::GET || parts.method == http::Method::HEAD;
        let mut tries = if idempotent { 2 } else { 1 };
        let res = loop {
            tries -= 1;
            let sent = self
                .client
                .request(parts.method.clone(), &url)
                .headers(headers.clone())
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if tries > 0 && is_watch_error(&r) => {
                    let status = r.status();
                    let text = r.text().await.unwrap_or_default();
                    eprintln!(
                        "devstack front: watch answered {} {path} with its own {status} ({text}); sending it again",
                        parts.method
                    );
                }
                Ok(r) => break r,
                Err(e) if tries > 0 => {
                    eprintln!(
                        "devstack front: watch did not answer {} {path} ({e}); sending it again",
                        parts.method
                    );
                }
                Err(e) => {
                    return answer(
                        502,
                        &format!("devstack front: cargo lambda watch did not answer: {e}"),
                    );
                }
            }
        };
        let (status, upstream_headers) = (res.status(), res.headers().clone());
        let bytes = match res.bytes().await {
            Ok(b) => b,
            Err(e) => return answer(502, &format!("devstack front: the answer was cut short: {e}")),
        };
        let mut out = hyper::Response::builder().status(status);
        for (k, v) in &upstream_headers {
            // hyper frames the body it is given; the upstream's framing does not apply.
            if k != http::header::TRANSFER_ENCODING
                && k != http::header::CONNECTION
                && k != http::header::CONTENT_LENGTH
            {
                out = out.header(k, v);
            }
        }
        out.body(Full::new(bytes))
            .unwrap_or_else(|_| answer(502, "devstack front: a bad answer"))
    }
}

/// A 500 from the watch server itself (plain text), not from a function (whose errors
/// are problem+json, or an invocation error's JSON).
fn is_watch_error(r: &reqwest::Response) -> bool {
    r.status() == reqwest::StatusCode::INTERNAL_SERVER_ERROR
        && r.headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/plain"))
}

fn answer(status: u16, text: &str) -> hyper::Response<Full<Bytes>> {
    let mut r = hyper::Response::new(Full::new(Bytes::from(text.to_owned())));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::BAD_GATEWAY);
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_body_the_watch_server_would_refuse_gets_its_type_recased() {
        let bad = b"{\"a\": \"\xff\xfe\"}";
        assert_eq!(
            content_type_for(Some("application/json"), bad).as_deref(),
            Some("Application/json")
        );
        assert_eq!(
            content_type_for(Some("text/plain; charset=utf-8"), bad).as_deref(),
            Some("Text/plain; charset=utf-8")
        );
        assert_eq!(content_type_for(None, bad).as_deref(), Some("Application/json"));
        // Already passed on as bytes, or text: unchanged.
        assert_eq!(content_type_for(Some("application/octet-stream"), bad), None);
        assert_eq!(content_type_for(Some("application/json"), b"{}"), None);
        assert_eq!(content_type_for(Some("application/json"), b""), None);
    }
}
