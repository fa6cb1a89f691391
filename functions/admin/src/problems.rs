//! The API's problems for what is not there, changed meanwhile, or unavailable.

use hookline::ids::DeliveryId;
use hookline::ports::PortError;
use hookline::problem::{FieldProblem, Problem};

pub(crate) fn with_etag(
    mut res: http::Response<String>,
    e: &hookline::endpoint::Endpoint,
) -> http::Response<String> {
    if let Ok(v) = format!("\"{}\"", e.version).parse() {
        res.headers_mut().insert(http::header::ETAG, v);
    }
    res
}

pub(crate) fn stale(now: &hookline::endpoint::Endpoint) -> Problem {
    Problem::precondition_failed(format!(
        "the endpoint changed since you read it (it is at version {}); read it again, then apply your change",
        now.version
    ))
}

pub(crate) fn parse_delivery_id(raw: &str) -> Result<DeliveryId, Problem> {
    DeliveryId::parse(raw).map_err(|_| no_delivery(raw))
}

pub(crate) fn parse_tenant_id(raw: &str) -> Result<hookline::ids::TenantId, Problem> {
    hookline::ids::TenantId::parse(raw).map_err(|_| no_tenant(raw))
}

pub(crate) fn no_tenant(id: &str) -> Problem {
    Problem::not_found(format!("there is no tenant `{id}`"))
}

pub(crate) fn no_endpoint(id: &str) -> Problem {
    Problem::not_found(format!("there is no endpoint `{id}`"))
}

pub(crate) fn no_delivery(id: &str) -> Problem {
    Problem::not_found(format!("there is no delivery `{id}`"))
}

pub(crate) fn no_event(id: &str) -> Problem {
    Problem::not_found(format!(
        "there is no event `{id}` (events are kept for the retention period)"
    ))
}

pub(crate) fn cursor_problem(e: PortError, cursor: &Option<String>) -> Problem {
    match e {
        e if e.is_permanent() && cursor.is_some() => Problem::validation(
            "the query is not valid",
            vec![FieldProblem::new("?cursor", "is not a cursor this API gave out")],
        ),
        e => store_problem(e),
    }
}

pub(crate) fn store_problem(e: PortError) -> Problem {
    tracing::error!(error = %e, "the store failed");
    if e.is_retryable() {
        Problem::unavailable()
    } else {
        Problem::internal()
    }
}
