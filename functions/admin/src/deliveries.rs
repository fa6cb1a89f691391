//! The delivery log, one delivery with its attempts, and an event with its fan-out.

use crate::boundary::tenant_filter;
use crate::problems::{cursor_problem, no_delivery, no_endpoint, no_event, no_tenant, store_problem};
use crate::query::Query;
use crate::{Admin, HttpResult};
use hookline::api;
use hookline::delivery::DeliveryStatus;
use hookline::event::{EventKey, EventType};
use hookline::ids::{DeliveryId, EndpointId, EventId, TenantId};
use hookline::ports::DeliveryQuery;
use hookline::ports::{Clock, DeliveryStore, EndpointStore, EventStore};
use hookline::problem::Problem;
use hookline::tenancy::Principal;
use hookline::timestamp::Timestamp;
use lambda_http::Request;
use serde_json::{Value, json};

impl<S: DeliveryStore + EventStore + EndpointStore, Q, H, P, C: Clock> Admin<S, Q, H, P, C> {
    pub(crate) async fn deliveries(&self, req: &Request, who: &Principal) -> HttpResult {
        let mut q = Query::new(req.uri());
        let tenant = tenant_filter(&mut q, who)?;
        let now = self.clock.now();
        let endpoint = q.parse("endpoint_id", |s| EndpointId::parse(s).map_err(|e| e.to_string()));
        let status = q.parse("status", |s| {
            DeliveryStatus::parse(s).ok_or_else(|| {
                "must be pending, retrying, delivered, failed, expired or superseded".to_owned()
            })
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
        // A tenant key reads the log of its own endpoints only (not even another's
        // emptiness or cursor); the operator's, any endpoint's, deleted ones' too.
        if let (Some(ep), Principal::Tenant { tenant, .. }) = (&endpoint, who) {
            let theirs = self.store.get_endpoint(ep).await.map_err(store_problem)?;
            if theirs.is_none_or(|e| &e.tenant_id != tenant) {
                return Err(no_endpoint(ep.as_str()));
            }
        }
        // Nothing older than the retention period is kept, so nothing older is looked for.
        let oldest = now.minus(self.retention);
        let query = DeliveryQuery {
            tenant,
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

    /// An event of the tenant `?tenant_id=` names (the operator's: `default` unless it
    /// names one), with its fan-out.
    pub(crate) async fn event(&self, raw: &str, req: &Request, who: &Principal) -> HttpResult {
        let mut q = Query::new(req.uri());
        let named = q.parse("tenant_id", |s| TenantId::parse(s).map_err(|e| e.to_string()));
        q.finish()?;
        let tenant = who.acting_for(named).map_err(|t| no_tenant(t.as_str()))?;
        let id = EventId::parse(raw).map_err(|_| no_event(raw))?;
        let id = EventKey::new(tenant, id);
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
        // The view names its tenant always; the delivered body only when not `default`.
        let mut event = serde_json::to_value(&stored.event).unwrap_or_default();
        event["tenant_id"] = json!(stored.event.tenant_id);
        if let Some(r) = &stored.event.data_ref {
            self.show_checked_in(&mut event, r).await?;
        }
        Ok(api::json(
            200,
            &json!({"event": event, "fanned_out": stored.fanned_out(&recorded), "deliveries": deliveries}),
        ))
    }

    /// A checked-in event's view holds its data whole, with its size and digest; data
    /// no longer stored (its retention ended) is `null`, and `data_expired` says so.
    async fn show_checked_in(
        &self,
        event: &mut Value,
        r: &hookline::claim_check::DataRef,
    ) -> Result<(), Problem> {
        if let Some(o) = event.as_object_mut() {
            o.remove("data_ref");
            o.insert("data_size".into(), json!(r.size));
            o.insert("data_sha256".into(), json!(r.sha256));
        }
        match self.data.get_data(&r.key).await.map_err(store_problem)? {
            Some(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(data) => event["data"] = data,
                Err(e) => {
                    tracing::error!(error = %e, "an event's stored data is not JSON");
                    return Err(Problem::internal());
                }
            },
            None => event["data_expired"] = json!(true),
        }
        Ok(())
    }
}
