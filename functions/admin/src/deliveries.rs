//! The delivery log, one delivery with its attempts, and an event with its fan-out.

use crate::problems::{cursor_problem, no_delivery, no_event, store_problem};
use crate::query::Query;
use crate::{Admin, HttpResult};
use hookline::api;
use hookline::delivery::DeliveryStatus;
use hookline::event::EventType;
use hookline::ids::{DeliveryId, EndpointId, EventId};
use hookline::ports::DeliveryQuery;
use hookline::ports::{Clock, DeliveryStore, EventStore};
use hookline::timestamp::Timestamp;
use lambda_http::Request;
use serde_json::json;

impl<S: DeliveryStore + EventStore, Q, H, P, C: Clock> Admin<S, Q, H, P, C> {
    pub(crate) async fn deliveries(&self, req: &Request) -> HttpResult {
        let mut q = Query::new(req.uri());
        let now = self.clock.now();
        let endpoint = q.parse("endpoint_id", |s| EndpointId::parse(s).map_err(|e| e.to_string()));
        let status = q.parse("status", |s| {
            DeliveryStatus::parse(s)
                .ok_or_else(|| "must be pending, retrying, delivered or failed".to_owned())
        });
        let event_type = q.parse("event_type", |s| EventType::parse(s).map_err(|e| e.to_string()));
        let since = q.parse("since", |s| {
            Timestamp::parse_rfc3339(s).map_err(|_| "must be an RFC 3339 date-time".into())
        });
        let until = q.parse("until", |s| {
            Timestamp::parse_rfc3339(s).map_err(|_| "must be an RFC 3339 date-time".into())
        });
        let limit = q.limit();
        let cursor = q.take("cursor");
        q.finish()?;
        // Nothing older than the retention period is kept, so nothing older is looked for.
        let oldest = now.minus(self.retention);
        let query = DeliveryQuery {
            endpoint,
            status,
            event_type,
            since: since.map_or(oldest, |s| s.max(oldest)),
            until: until.unwrap_or(now),
            limit,
            cursor: cursor.clone(),
        };
        let page = self
            .store
            .list_deliveries(&query)
            .await
            .map_err(|e| cursor_problem(e, &cursor))?;
        Ok(api::json(
            200,
            &json!({"data": page.items, "next_cursor": page.next_cursor}),
        ))
    }

    pub(crate) async fn delivery(&self, id: &DeliveryId) -> HttpResult {
        match self.store.find_delivery(id).await.map_err(store_problem)? {
            Some((d, attempts)) => {
                let mut body = serde_json::to_value(&d).unwrap_or_default();
                body["attempts"] = json!(attempts);
                Ok(api::json(200, &body))
            }
            None => Err(no_delivery(id.as_str())),
        }
    }

    pub(crate) async fn event(&self, raw: &str) -> HttpResult {
        let id = EventId::parse(raw).map_err(|_| no_event(raw))?;
        let stored = self
            .store
            .get_event(&id)
            .await
            .map_err(store_problem)?
            .ok_or_else(|| no_event(raw))?;
        let deliveries: Vec<_> = self
            .store
            .deliveries_for_event(&id)
            .await
            .map_err(store_problem)?
            .into_iter()
            .map(|(d, _)| d)
            .collect();
        let recorded = deliveries.iter().map(|d| d.id.clone()).collect();
        Ok(api::json(
            200,
            &json!({"event": stored.event, "fanned_out": stored.fanned_out(&recorded), "deliveries": deliveries}),
        ))
    }
}
