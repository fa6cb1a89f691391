//! `application/problem+json` (RFC 9457) bodies: what every API error looks like.

use serde::Serialize;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// One thing wrong with the input, located by a JSON pointer when it is in the body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    pub pointer: String,
    pub detail: String,
}

impl FieldProblem {
    pub fn new(pointer: impl Into<String>, detail: impl Into<String>) -> Self {
        Self {
            pointer: pointer.into(),
            detail: detail.into(),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldProblem>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Seconds until a retry may succeed, sent as `Retry-After`.
    #[serde(skip)]
    pub retry_after: Option<std::num::NonZeroU32>,
}

impl Problem {
    fn new(slug: &str, title: &'static str, status: u16, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:hookline:problem:{slug}"),
            title,
            status,
            detail: detail.into(),
            errors: Vec::new(),
            request_id: None,
            retry_after: None,
        }
    }

    /// A limit was reached; the same request may succeed after `retry_after` seconds.
    pub fn too_many_requests(detail: impl Into<String>, retry_after: u64) -> Self {
        let secs = u32::try_from(retry_after).unwrap_or(u32::MAX).max(1);
        Self {
            retry_after: std::num::NonZeroU32::new(secs),
            ..Self::new("rate-limited", "Too many requests", 429, detail)
        }
    }

    pub fn invalid_json(detail: impl Into<String>) -> Self {
        Self::new("invalid-json", "The body is not valid JSON", 400, detail)
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new("bad-request", "The request is malformed", 400, detail)
    }

    pub fn validation(detail: impl Into<String>, errors: Vec<FieldProblem>) -> Self {
        Self {
            errors,
            ..Self::new("validation", "The request is not valid", 422, detail)
        }
    }

    pub fn unauthorized() -> Self {
        Self::new(
            "unauthorized",
            "Missing or invalid API key",
            401,
            "send a valid key as `Authorization: Bearer <key>` or `x-api-key: <key>`",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new("forbidden", "The key may not do this", 403, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new("not-found", "Not found", 404, detail)
    }

    pub fn method_not_allowed(detail: impl Into<String>) -> Self {
        Self::new("method-not-allowed", "Method not allowed", 405, detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new("conflict", "Conflict", 409, detail)
    }

    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        Self::new("precondition-failed", "The resource changed", 412, detail)
    }

    pub fn precondition_required(detail: impl Into<String>) -> Self {
        Self::new(
            "precondition-required",
            "Say which version you are changing",
            428,
            detail,
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            "payload-too-large",
            "The body is too large",
            413,
            format!("the body must be at most {limit} bytes"),
        )
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new("unsupported-media-type", "Unsupported media type", 415, detail)
    }

    /// Something failed on our side; the cause is logged, never shown.
    pub fn internal() -> Self {
        Self::new(
            "internal",
            "Internal error",
            500,
            "the request could not be completed; it is safe to retry with the same event id",
        )
    }

    pub fn unavailable() -> Self {
        Self::new(
            "unavailable",
            "Temporarily unavailable",
            503,
            "a dependency is unavailable; retry with the same event id",
        )
    }

    pub fn with_request_id(mut self, id: Option<String>) -> Self {
        self.request_id = id;
        self
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}
