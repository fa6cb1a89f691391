//! The diagnosis: what the network probe and the hourly counters find, judged by
//! `hookline::diagnosis`.

use crate::problems::{no_endpoint, store_problem};
use crate::{Admin, HttpResult};
use hookline::api;
use hookline::diagnosis::{Findings, reachable, report, target};
use hookline::ids::EndpointId;
use hookline::ports::{
    Clock, DeliveryStore, EndpointStore, EventStore, NetworkProbe, Queue, StatsStore, WebhookSender,
};
use hookline::stats::{HourStats, hour_of};
use std::time::Duration;

impl<S, Q, H, P, C> Admin<S, Q, H, P, C>
where
    S: EndpointStore + DeliveryStore + EventStore + StatsStore,
    Q: Queue,
    H: WebhookSender,
    P: NetworkProbe,
    C: Clock,
{
    /// What stands between the endpoint and its webhooks: DNS, reachability, recent
    /// failures and latency, the auto-disable clock, and what to do about it.
    pub(crate) async fn diagnose(&self, id: &EndpointId) -> HttpResult {
        let e = self
            .store
            .get_endpoint(id)
            .await
            .map_err(store_problem)?
            .ok_or_else(|| no_endpoint(id.as_str()))?;
        let now = self.clock.now();
        let (host, port) = target(&e.url);
        let resolved = self.probe.resolve(&host, port).await;
        // A TCP connection to the first address Hookline may use.
        let connected = match reachable(&self.ssrf, resolved.as_deref().unwrap_or_default()).first() {
            None => None,
            Some(addr) => Some((*addr, self.probe.connect(*addr).await)),
        };
        let mut day = HourStats::default();
        for h in self
            .store
            .read_stats(
                id,
                &hour_of(now.minus(Duration::from_secs(23 * 3600))),
                &hour_of(now),
            )
            .await
            .map_err(store_problem)?
        {
            day.merge(&h);
        }
        let findings = Findings {
            host,
            resolved,
            connected,
            day,
        };
        Ok(api::json(
            200,
            &report(&e, &self.ssrf, &findings, self.disable_after),
        ))
    }
}
