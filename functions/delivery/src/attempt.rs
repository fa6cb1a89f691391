//! One attempt: a signed POST, judged by the endpoint's retry policy, and what it does
//! to the endpoint's health (`hookline::endpoint_health`).

use crate::Deliverer;
use crate::invocation::Invocation;
use hookline::delivery::{Attempt, Delivery};
use hookline::endpoint::Endpoint;
use hookline::endpoint_health::{Streak, disable_after_failure, streak_after};
use hookline::event::Event;
use hookline::hop;
use hookline::ops;
use hookline::ports::{Clock, EndpointStore, WebhookSender};
use hookline::retry::Verdict;
use hookline::webhook::signed_request;
use std::time::Instant;
use tracing::Instrument;

impl<S, H, Q, C> Deliverer<S, H, Q, C>
where
    S: EndpointStore,
    H: WebhookSender,
    C: Clock,
{
    /// One signed POST, judged by the endpoint's retry policy. With a `deadline`, `None`
    /// when the receiver has not answered that long after the POST went out (the wait
    /// for one of the invocation's POST slots does not count: a busy batch is not the
    /// endpoint's slowness).
    pub(crate) async fn attempt(
        &self,
        event: &Event,
        body: &bytes::Bytes,
        ep: &Endpoint,
        before: &Delivery,
        inv: &Invocation,
        deadline: Option<std::time::Duration>,
    ) -> Option<(Delivery, Attempt, Verdict)> {
        let number = before.attempts + 1;
        let span = tracing::info_span!("attempt", endpoint_id = %ep.id, attempt = number);
        async {
            // Waiting for a slot is not part of the attempt (nor of its signature's
            // time). The semaphore is never closed: on error the POST goes anyway.
            let permit = inv.posts.acquire().await.ok();
            let started_at = self.clock.now();
            let request = signed_request(event, body.clone(), ep, &before.id, started_at.unix_seconds());
            let clock = Instant::now();
            let post = self.sender.post(request);
            let outcome = match deadline {
                None => post.await,
                Some(wait) => tokio::time::timeout(wait, post).await.ok()?,
            };
            drop(permit);
            let duration_ms = u64::try_from(clock.elapsed().as_millis()).unwrap_or(u64::MAX);
            let finished_at = self.clock.now();
            let policy = ep.retry_policy(&self.settings.retry);
            let (mut delivery, verdict) = before.judged(
                &policy,
                &outcome,
                hookline::random_unit(),
                event.expires_at,
                finished_at,
            );
            // A wait too long for a delayed message waits in the table (`hookline::hop`).
            if let Verdict::RetryIn(wait) = verdict
                && hop::parks(wait, self.settings.hop_limits())
            {
                delivery.park();
            }
            tracing::info!(
                event_id = %event.id,
                delivery_id = %delivery.id,
                status = delivery.status.as_str(),
                status_code = outcome.status_code(),
                duration_ms,
                error = outcome.error_text(),
                next_attempt_at = delivery.next_attempt_at.map(|t| t.to_rfc3339()),
                "attempt finished"
            );
            let tenant = self.settings.metric_tenants.label(&delivery.tenant_id);
            inv.timed(delivery.status, outcome.status_code(), tenant, duration_ms);
            let attempt = Attempt {
                number,
                started_at,
                duration_ms,
                outcome,
            };
            Some((delivery, attempt, verdict))
        }
        .instrument(span)
        .await
    }

    /// After an attempt is recorded: counts it, reports an exhausted delivery, keeps
    /// the endpoint's failing streak, and disables the endpoint when the health rule
    /// says so.
    pub(crate) async fn after_attempt(
        &self,
        ep: &Endpoint,
        d: &Delivery,
        attempt: &Attempt,
        verdict: &Verdict,
        inv: &Invocation,
    ) {
        let now = self.clock.now();
        inv.attempted(d, attempt);
        let since = match streak_after(ep.failing_since, attempt.outcome.is_success(), attempt.number > 1) {
            Streak::Healthy => return,
            Streak::Recovered => {
                if let Err(e) = self.store.note_success(&ep.id).await {
                    tracing::warn!(error = %e, "could not clear the endpoint's failing streak");
                }
                return;
            }
            Streak::Failing { since } => since,
            Streak::Starts => self.store.note_failure(&ep.id, now).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not note the endpoint's failure");
                now
            }),
        };
        let Some(disable) = disable_after_failure(verdict, since, now, self.settings.disable_after) else {
            return;
        };
        match self
            .store
            .disable_endpoint(&ep.id, &disable.reason, now, disable.failing_before)
            .await
        {
            Ok(true) => {
                tracing::warn!(endpoint_id = %ep.id, reason = disable.reason, "endpoint disabled");
                inv.report(Some(ops::endpoint_disabled(ep)));
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not disable the endpoint"),
        }
    }
}
