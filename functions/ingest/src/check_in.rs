//! Large events' data, stored before they are queued (`hookline::claim_check`): the
//! event then travels, and is stored, small.

use crate::{Ingest, queue_problem};
use hookline::event::Event;
use hookline::problem::Problem;
use serde_json::{Value, json};

impl<Q, E, C> Ingest<Q, E, C> {
    /// Stores a large event's data (`hookline::claim_check`), so that it travels small.
    pub(crate) async fn check_in(&self, event: &mut Event) -> Result<(), Problem> {
        let Some(data) = hookline::claim_check::check_in(event) else {
            return Ok(());
        };
        let (key, bytes) = (event.data_ref.as_ref().map_or("", |r| r.key.as_str()), data.len());
        self.data.put_data(key, data).await.map_err(|e| {
            tracing::error!(error = %e, event_id = %event.id, "the event's data could not be stored");
            queue_problem(&e)
        })?;
        tracing::info!(event_id = %event.id, bytes, "the event's data is checked in");
        Ok(())
    }

    /// Checks in every large event of a batch at once; those whose data cannot be
    /// stored are marked failed (with whether to send them again) and left out. Also
    /// how many of those may be sent again.
    pub(crate) async fn check_in_all(
        &self,
        mut events: Vec<(usize, Event)>,
        results: &mut [Value],
    ) -> (Vec<(usize, Event)>, usize) {
        let stores: Vec<_> = events
            .iter_mut()
            .filter_map(|(i, event)| {
                let data = hookline::claim_check::check_in(event)?;
                let key = event.data_ref.as_ref()?.key.clone();
                Some(async move { (*i, self.data.put_data(&key, data).await) })
            })
            .collect();
        let mut failed = Vec::new();
        let mut retryable = 0;
        for (i, stored) in futures::future::join_all(stores).await {
            if let Err(e) = stored {
                tracing::error!(index = i, error = %e, "a batch event's data could not be stored");
                retryable += usize::from(e.is_retryable());
                if let Some(r) = results.get_mut(i) {
                    r["status"] = json!("failed");
                    r["retryable"] = json!(e.is_retryable());
                }
                failed.push(i);
            }
        }
        events.retain(|(i, _)| !failed.contains(i));
        (events, retryable)
    }
}
