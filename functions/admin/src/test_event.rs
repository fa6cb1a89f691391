//! A signed test event, sent now, answered with what the endpoint said.

use crate::{Admin, HttpResult, MAX_BODY_BYTES, TEST_EVENT_TYPE, TEST_TIMEOUT};
use hookline::api;
use hookline::delivery::AttemptOutcome;
use hookline::event::{Event, EventType};
use hookline::ids::{DeliveryId, EndpointId, EventId};
use hookline::ports::{Clock, EndpointStore, WebhookSender};
use hookline::problem::{FieldProblem, Problem};
use hookline::webhook::signed_request;
use lambda_http::Request;
use serde_json::json;

impl<S: EndpointStore, Q, H: WebhookSender, P, C: Clock> Admin<S, Q, H, P, C> {
    /// Sends a signed test event now and answers with what the endpoint said. Nothing
    /// is recorded: it is a probe, not a delivery.
    pub(crate) async fn test(&self, id: &EndpointId, req: &Request) -> HttpResult {
        let value = api::optional_json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let mut errors = Vec::new();
        let Some(obj) = api::object(&value, "/", &mut errors) else {
            return Err(Problem::validation("the test is not valid", errors));
        };
        api::refuse_unknown_fields(obj, &["event_type", "data"], "", &mut errors);
        let event_type = match api::opt_str(obj, "event_type", "", &mut errors) {
            None => EventType::parse(TEST_EVENT_TYPE).ok(),
            Some(t) => match EventType::parse(t) {
                // Hookline's own types are Hookline's to send: a receiver must be able to
                // trust a `hookline.endpoint.disabled`, so a test may not dress up as one.
                Ok(t) if t.is_reserved_in_any_case() && t.as_str() != TEST_EVENT_TYPE => {
                    errors.push(FieldProblem::new(
                        "/event_type",
                        format!(
                            "the `hookline.` prefix is reserved for Hookline's own events; leave `event_type` out for `{TEST_EVENT_TYPE}`"
                        ),
                    ));
                    None
                }
                Ok(t) => Some(t),
                Err(e) => {
                    errors.push(FieldProblem::new("/event_type", e.to_string()));
                    None
                }
            },
        };
        let (Some(event_type), true) = (event_type, errors.is_empty()) else {
            return Err(Problem::validation("the test is not valid", errors));
        };
        let e = self.existing(id).await?;
        let now = self.clock.now();
        let event = Event {
            id: EventId::generate(),
            tenant_id: e.tenant_id.clone(),
            event_type,
            data: obj
                .get("data")
                .cloned()
                .unwrap_or_else(|| json!({"message": "a test event from Hookline"})),
            timestamp: now,
            source: "hookline.test".into(),
            version: hookline::event::ENVELOPE_VERSION.into(),
            expires_at: None,
            collapse_key: None,
            data_ref: None,
            order: None,
        };
        let body = event.envelope_json().into();
        let mut request = signed_request(&event, body, &e, &DeliveryId::generate(), now.unix_seconds());
        // The answer must come back inside API Gateway's 30 s integration limit.
        request.timeout = request.timeout.min(TEST_TIMEOUT);
        let started = std::time::Instant::now();
        let outcome = self.sender.post(request).await;
        let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(endpoint_id = %id, status = outcome.status_code(), latency_ms, "test event sent");
        let mut answer = json!({
            "success": outcome.is_success(),
            "latency_ms": latency_ms,
            "event": event,
        });
        match &outcome {
            AttemptOutcome::Response { status, body, .. } => {
                answer["status"] = json!(status);
                answer["body"] = json!(body);
            }
            AttemptOutcome::Error { error, message } => {
                answer["error"] = json!(error);
                answer["message"] = json!(message);
            }
        }
        Ok(api::json(200, &answer))
    }
}
