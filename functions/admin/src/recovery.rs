//! Sending deliveries again: one on request (`retry`), or every failed one of an
//! endpoint in a time range (`recover`), through `hookline::replay` like the sweeper.

use crate::problems::{no_delivery, no_endpoint, store_problem};
use crate::{Admin, HttpResult, MAX_BODY_BYTES, MAX_PAGE, MAX_RECOVER};
use hookline::api;
use hookline::delivery::DeliveryStatus;
use hookline::ids::{DeliveryId, EndpointId};
use hookline::ports::DeliveryQuery;
use hookline::ports::{Clock, DeliveryStore, EndpointStore, EventStore, Queue};
use hookline::problem::{FieldProblem, Problem};
use hookline::replay::{EventsRead, Reopen, replay};
use hookline::timestamp::Timestamp;
use lambda_http::Request;
use serde_json::json;

impl<S: EndpointStore + DeliveryStore + EventStore, Q: Queue, H, P, C: Clock> Admin<S, Q, H, P, C> {
    /// Sends again every failed delivery of the endpoint in a time range.
    pub(crate) async fn recover(&self, id: &EndpointId, req: &Request) -> HttpResult {
        let value = api::json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let mut errors = Vec::new();
        let Some(obj) = api::object(&value, "/", &mut errors) else {
            return Err(Problem::validation("the recovery is not valid", errors));
        };
        api::refuse_unknown_fields(obj, &["since", "until"], "", &mut errors);
        let mut time = |key: &str| {
            api::opt_str(obj, key, "", &mut errors).and_then(|raw| {
                Timestamp::parse_rfc3339(raw)
                    .map_err(|_| {
                        errors.push(FieldProblem::new(
                            format!("/{key}"),
                            "must be an RFC 3339 date-time",
                        ))
                    })
                    .ok()
            })
        };
        let since = time("since");
        let until = time("until");
        if obj.get("since").is_none_or(serde_json::Value::is_null) {
            errors.push(FieldProblem::new("/since", "is required: an RFC 3339 date-time"));
        }
        if let (Some(s), Some(u)) = (since, until)
            && u < s
        {
            errors.push(FieldProblem::new("/until", "must not be before `since`"));
        }
        if !errors.is_empty() {
            return Err(Problem::validation("the recovery is not valid", errors));
        }
        if self
            .store
            .get_endpoint(id)
            .await
            .map_err(store_problem)?
            .is_none()
        {
            return Err(no_endpoint(id.as_str()));
        }
        let now = self.clock.now();
        let mut query = DeliveryQuery {
            tenant: None,
            endpoint: Some(id.clone()),
            status: Some(DeliveryStatus::Failed),
            event_type: None,
            since: since.unwrap_or(now),
            until: until.unwrap_or(now),
            limit: MAX_PAGE,
            cursor: None,
        };
        let (mut recovered, mut skipped) = (0u32, 0u32);
        let mut events = EventsRead::default();
        loop {
            let page = self.store.list_deliveries(&query).await.map_err(store_problem)?;
            for seen in page.items {
                let Some(event) = events
                    .get(&self.store, &seen.event_key())
                    .await
                    .map_err(store_problem)?
                else {
                    skipped += 1;
                    continue;
                };
                let replayed = replay(&self.store, &self.queue, event, &seen, Reopen::Retry, now)
                    .await
                    .map_err(store_problem)?;
                let Some(replayed) = replayed else {
                    skipped += 1;
                    continue;
                };
                if let Err(e) = replayed.queued {
                    tracing::warn!(error = %e, delivery_id = %seen.id, "could not queue a recovery; the sweeper will");
                }
                recovered += 1;
            }
            match page.next_cursor {
                Some(c) if recovered + skipped < MAX_RECOVER => query.cursor = Some(c),
                more => {
                    tracing::info!(endpoint_id = %id, recovered, skipped, "recovery requested");
                    return Ok(api::json(
                        202,
                        &json!({"recovered": recovered, "skipped": skipped, "more": more.is_some()}),
                    ));
                }
            }
        }
    }

    /// One more attempt now, through the queue like any other.
    pub(crate) async fn retry(&self, id: &DeliveryId, req: &Request) -> HttpResult {
        // It takes no body: an empty one, or `{}`; anything else is refused rather than
        // ignored, so a caller who thinks it sets something learns that it does not.
        let value = api::optional_json_body(req.headers(), req.body().as_ref(), MAX_BODY_BYTES)?;
        let mut errors = Vec::new();
        if let Some(obj) = api::object(&value, "/", &mut errors) {
            api::refuse_unknown_fields(obj, &[], "", &mut errors);
        }
        if !errors.is_empty() {
            return Err(Problem::validation("a retry takes no body", errors));
        }
        let (seen, _) = self
            .store
            .find_delivery(id)
            .await
            .map_err(store_problem)?
            .ok_or_else(|| no_delivery(id.as_str()))?;
        // What the sender asked for: sent again, it would end the same way at once.
        if let Some(why) = match seen.status {
            DeliveryStatus::Expired => Some("it expired: its event may not be sent after its `expires_at`"),
            DeliveryStatus::Superseded => {
                Some("it was superseded: a newer event under its `collapse_key` went to the endpoint instead")
            }
            _ => None,
        } {
            return Err(Problem::conflict(format!(
                "the delivery is not retried, as {why}"
            )));
        }
        let event = self
            .store
            .get_event(&seen.event_key())
            .await
            .map_err(store_problem)?
            .ok_or_else(|| {
                Problem::conflict("the delivery's event is no longer stored (past its retention)")
            })?
            .event;
        let replayed = replay(
            &self.store,
            &self.queue,
            &event,
            &seen,
            Reopen::Retry,
            self.clock.now(),
        )
        .await
        .map_err(store_problem)?
        .ok_or_else(|| Problem::conflict("the delivery changed meanwhile; read it again and retry"))?;
        // If this send failed the delivery is open and due, and the sweeper re-drives it.
        if let Err(e) = replayed.queued {
            tracing::warn!(error = %e, delivery_id = %id, "could not queue the retry; the sweeper will");
        }
        tracing::info!(delivery_id = %id, "retry requested");
        Ok(api::json(202, &replayed.delivery))
    }
}
