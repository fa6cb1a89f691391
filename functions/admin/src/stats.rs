//! Statistics over the last hours, from the hourly counters.

use crate::boundary::tenant_filter;
use crate::problems::{no_endpoint, store_problem};
use crate::query::Query;
use crate::{Admin, HttpResult, MAX_STATS_HOURS, STATS_READS_AT_ONCE};
use futures::StreamExt;
use hookline::api;
use hookline::ids::EndpointId;
use hookline::ports::PortError;
use hookline::ports::{Clock, EndpointStore, StatsStore};
use hookline::stats::{HourStats, hour_of};
use hookline::tenancy::Principal;
use lambda_http::Request;
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

impl<S: EndpointStore + StatsStore, Q, H, P, C: Clock> Admin<S, Q, H, P, C> {
    /// Totals and per-endpoint figures over the last `hours`, from the hourly counters.
    pub(crate) async fn stats(
        &self,
        only: Option<&EndpointId>,
        req: &Request,
        who: &Principal,
    ) -> HttpResult {
        let mut q = Query::new(req.uri());
        let tenant = match only {
            Some(_) => None,
            None => tenant_filter(&mut q, who)?,
        };
        let hours = q
            .parse("hours", |s| match s.parse::<u32>() {
                Ok(n) if (1..=MAX_STATS_HOURS).contains(&n) => Ok(n),
                _ => Err(format!(
                    "must be a whole number of hours from 1 to {MAX_STATS_HOURS}"
                )),
            })
            .unwrap_or(24);
        let by_hour = q
            .parse("by", |s| match s {
                "hour" => Ok(true),
                _ => Err("must be `hour` (a series, one entry per hour) or left out".to_owned()),
            })
            .unwrap_or(false);
        q.finish()?;
        let now = self.clock.now();
        let from = hour_of(now.minus(Duration::from_secs(u64::from(hours - 1) * 3600)));
        let to = hour_of(now);
        let endpoints = match only {
            Some(id) => vec![
                self.store
                    .get_endpoint(id)
                    .await
                    .map_err(store_problem)?
                    .ok_or_else(|| no_endpoint(id.as_str()))?,
            ],
            None => {
                let mut all = self.store.all_endpoints().await.map_err(store_problem)?;
                all.retain(|e| tenant.as_ref().is_none_or(|t| &e.tenant_id == t));
                all
            }
        };
        // One query per endpoint, several at once.
        let reads: Vec<_> = endpoints
            .iter()
            .map(|e| {
                let (from, to) = (from.clone(), to.clone());
                async move {
                    let rows = self.store.read_stats(&e.id, &from, &to).await?;
                    Ok::<_, PortError>((e, rows))
                }
            })
            .collect();
        let sums: Vec<_> = futures::stream::iter(reads)
            .buffered(STATS_READS_AT_ONCE)
            .collect()
            .await;
        let mut total = HourStats::default();
        let mut hourly: BTreeMap<String, HourStats> = BTreeMap::new();
        let mut per = Vec::with_capacity(endpoints.len());
        for r in sums {
            let (e, rows) = r.map_err(store_problem)?;
            let mut sum = HourStats::default();
            for (hour, h) in rows {
                sum.merge(&h);
                hourly.entry(hour).or_default().merge(&h);
            }
            total.merge(&sum);
            per.push(json!({"endpoint_id": e.id, "name": e.name, "stats": sum.summary()}));
        }
        let mut body = match only {
            Some(_) => json!({"hours": hours, "endpoint_id": endpoints[0].id, "stats": total.summary()}),
            None => json!({"hours": hours, "totals": total.summary(), "endpoints": per}),
        };
        if by_hour {
            // Every hour of the range, oldest first; an hour without attempts is zeros.
            body["series"] = (0..hours)
                .rev()
                .map(|back| {
                    let hour = hour_of(now.minus(Duration::from_secs(u64::from(back) * 3600)));
                    let stats = hourly.remove(&hour).unwrap_or_default().summary();
                    json!({"hour": hour, "stats": stats})
                })
                .collect();
        }
        Ok(api::json(200, &body))
    }
}
