//! The diagnosis: what the network probe and the hourly counters find, judged by
//! `hookline::diagnosis`.

use crate::problems::store_problem;
use crate::{Admin, HttpResult};
use hookline::api;
use hookline::diagnosis::{Findings, reachable, report, target};
use hookline::ids::EndpointId;
use hookline::ports::{Clock, EndpointStore, NetworkProbe, StatsStore};
use hookline::stats::{HourStats, hour_of};
use std::time::Duration;

impl<S: EndpointStore + StatsStore, Q, H, P: NetworkProbe, C: Clock> Admin<S, Q, H, P, C> {
    /// What stands between the endpoint and its webhooks: DNS, reachability, recent
    /// failures and latency, the auto-disable clock, and what to do about it.
    pub(crate) async fn diagnose(&self, id: &EndpointId) -> HttpResult {
        let e = self.existing(id).await?;
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
            day.merge(&h.1);
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
