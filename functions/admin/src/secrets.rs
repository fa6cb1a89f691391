//! Secret rotation: a new secret, the old one signing beside it for a grace period.

use crate::problems::{store_problem, with_etag};
use crate::{Admin, DEFAULT_ROTATION_GRACE_SECONDS, HttpResult, MAX_BODY_BYTES, MAX_ROTATION_GRACE_SECONDS};
use hookline::api;
use hookline::endpoint::EndpointView;
use hookline::ids::EndpointId;
use hookline::ports::{Clock, EndpointStore};
use hookline::problem::{FieldProblem, Problem};
use hookline::signing::EndpointSecret;
use lambda_http::Request;
use serde_json::json;
use std::time::Duration;

impl<S: EndpointStore, Q, H, P, C: Clock> Admin<S, Q, H, P, C> {
    /// A new secret; the old one keeps signing beside it for the grace period.
    pub(crate) async fn rotate(&self, id: &EndpointId, req: &Request) -> HttpResult {
        let value = api::optional_json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let mut errors = Vec::new();
        let Some(obj) = api::object(&value, "/", &mut errors) else {
            return Err(Problem::validation("the rotation is not valid", errors));
        };
        api::refuse_unknown_fields(obj, &["grace_seconds", "secret"], "", &mut errors);
        let grace = match obj.get("grace_seconds") {
            None => Duration::from_secs(DEFAULT_ROTATION_GRACE_SECONDS),
            Some(v) => match v.as_u64().filter(|s| *s <= MAX_ROTATION_GRACE_SECONDS) {
                Some(s) => Duration::from_secs(s),
                None => {
                    errors.push(FieldProblem::new(
                        "/grace_seconds",
                        format!("must be whole seconds from 0 to {MAX_ROTATION_GRACE_SECONDS}"),
                    ));
                    Duration::ZERO
                }
            },
        };
        let new = match api::opt_str(obj, "secret", "", &mut errors) {
            None => Some(EndpointSecret::generate()),
            Some(s) => EndpointSecret::parse(s)
                .map_err(|e| errors.push(FieldProblem::new("/secret", e.to_string())))
                .ok(),
        };
        let Some(new) = new.filter(|_| errors.is_empty()) else {
            return Err(Problem::validation("the rotation is not valid", errors));
        };
        // Read, rotate, write on condition; another change in between means read again.
        for _ in 0..3 {
            let mut e = self.existing(id).await?;
            let read_version = e.version;
            e.rotate_secret(new.clone(), grace, self.clock.now());
            e.version = read_version + 1;
            if self
                .store
                .update_endpoint(&e, read_version)
                .await
                .map_err(store_problem)?
            {
                tracing::info!(endpoint_id = %id, grace_seconds = grace.as_secs(), "secret rotated");
                let mut body = serde_json::to_value(EndpointView::from(&e)).unwrap_or_default();
                body["secret"] = json!(e.secret.expose());
                return Ok(with_etag(api::json(200, &body), &e));
            }
        }
        Err(Problem::conflict("the endpoint kept changing; try again"))
    }
}
