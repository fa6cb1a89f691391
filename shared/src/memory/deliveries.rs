//! Deliveries and their attempts in memory, with the conditions DynamoDB applies.

use super::{DeliveryLog, DeliveryRow, MemoryStore};
use crate::delivery::{Attempt, Delivery};
use crate::event::EventKey;
use crate::ids::{DeliveryId, EndpointId};
use crate::ports::{DeliveryQuery, DeliveryStore, DueDelivery, OpenDeliveries, Page, PortError, PortResult};
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use std::time::Duration;

impl MemoryStore {
    /// The row, if the delivery is still open and as `seen`.
    fn as_seen<'a>(rows: &'a mut DeliveryLog, seen: &Delivery) -> Option<&'a mut DeliveryRow> {
        rows.get_mut(&(seen.event_key(), seen.endpoint_id.clone()))
            .filter(|r| {
                r.delivery.status.is_open()
                    && r.delivery.attempts == seen.attempts
                    && r.delivery.wake == seen.wake
            })
    }

    fn due_of(d: &Delivery) -> Option<Timestamp> {
        if d.status.is_open() {
            d.next_attempt_at
        } else {
            None
        }
    }
}

#[async_trait]
impl DeliveryStore for MemoryStore {
    async fn record_attempts(&self, records: &[(&Delivery, Option<&Attempt>)]) -> PortResult<()> {
        self.refuse("record_attempts")?;
        let before = self.before_next_write.lock().unwrap().take();
        if let Some(before) = before {
            before.await;
        }
        self.check()?;
        let failing = &self.failing_writes;
        if failing
            .fetch_update(
                std::sync::atomic::Ordering::SeqCst,
                std::sync::atomic::Ordering::SeqCst,
                |n| n.checked_sub(1),
            )
            .is_ok()
        {
            return Err(PortError::retryable("memory store", "the write failed (test)"));
        }
        let mut all = self.deliveries.lock().unwrap();
        // Each record replaces what was there, as DynamoDB's PutRequest does.
        for (d, a) in records {
            all.insert(
                (d.event_key(), d.endpoint_id.clone()),
                DeliveryRow {
                    delivery: (*d).clone(),
                    attempts: a.iter().map(|a| (*a).clone()).collect(),
                    lease_until: None,
                    due_at: Self::due_of(d),
                },
            );
        }
        Ok(())
    }

    async fn deliveries_for_event(&self, id: &EventKey) -> PortResult<Vec<(Delivery, Vec<Attempt>)>> {
        self.check()?;
        Ok(self
            .deliveries
            .lock()
            .unwrap()
            .iter()
            .filter(|((e, _), _)| e == id)
            .map(|(_, r)| (r.delivery.clone(), r.attempts.clone()))
            .collect())
    }

    async fn get_delivery(&self, event: &EventKey, endpoint: &EndpointId) -> PortResult<Option<Delivery>> {
        self.refuse("get_delivery")?;
        self.check()?;
        Ok(self
            .deliveries
            .lock()
            .unwrap()
            .get(&(event.clone(), endpoint.clone()))
            .map(|r| r.delivery.clone()))
    }

    async fn claim_attempt(&self, seen: &Delivery, now: Timestamp, lease: Duration) -> PortResult<bool> {
        self.refuse("claim_attempt")?;
        self.check()?;
        let mut all = self.deliveries.lock().unwrap();
        match Self::as_seen(&mut all, seen) {
            Some(r) if r.lease_until.is_none_or(|t| t < now) => {
                r.lease_until = Some(now.saturating_add(lease));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn record_attempt(
        &self,
        seen: &Delivery,
        updated: &Delivery,
        attempt: &Attempt,
    ) -> PortResult<bool> {
        self.refuse("record_attempt")?;
        self.check()?;
        let mut all = self.deliveries.lock().unwrap();
        match Self::as_seen(&mut all, seen) {
            Some(r) => {
                r.delivery = updated.clone();
                r.attempts.push(attempt.clone());
                r.lease_until = None;
                r.due_at = Self::due_of(updated);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn redrive(&self, seen: &Delivery, wake: &str, now: Timestamp) -> PortResult<bool> {
        self.check()?;
        let mut all = self.deliveries.lock().unwrap();
        match Self::as_seen(&mut all, seen) {
            Some(r) if r.lease_until.is_none_or(|t| t < now) => {
                r.delivery.wake = Some(wake.to_owned());
                r.due_at = Some(now);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn release_attempt(&self, seen: &Delivery) -> PortResult<bool> {
        self.check()?;
        let mut all = self.deliveries.lock().unwrap();
        match Self::as_seen(&mut all, seen) {
            Some(r) => {
                r.lease_until = None;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn fail_delivery(&self, seen: &Delivery, failed: &Delivery) -> PortResult<bool> {
        self.refuse("fail_delivery")?;
        self.check()?;
        let mut all = self.deliveries.lock().unwrap();
        match Self::as_seen(&mut all, seen) {
            Some(r) => {
                r.delivery = failed.clone();
                r.due_at = None;
                r.lease_until = None;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn due_deliveries(&self, before: Timestamp, limit: u32) -> PortResult<Vec<DueDelivery>> {
        self.check()?;
        let all = self.deliveries.lock().unwrap();
        let mut due: Vec<(Timestamp, DueDelivery)> = all
            .values()
            .filter_map(|r| {
                let at = r.due_at.filter(|t| *t <= before)?;
                Some((
                    at,
                    DueDelivery {
                        delivery: r.delivery.clone(),
                        due_at: at,
                        leased_until: r.lease_until,
                    },
                ))
            })
            .collect();
        due.sort_by_key(|(t, _)| *t);
        Ok(due.into_iter().take(limit as usize).map(|(_, d)| d).collect())
    }

    async fn find_delivery(&self, id: &DeliveryId) -> PortResult<Option<(Delivery, Vec<Attempt>)>> {
        self.check()?;
        Ok(self
            .deliveries
            .lock()
            .unwrap()
            .values()
            .find(|r| &r.delivery.id == id)
            .map(|r| (r.delivery.clone(), r.attempts.clone())))
    }

    async fn list_deliveries(&self, q: &DeliveryQuery) -> PortResult<Page<Delivery>> {
        self.check()?;
        let after = q
            .cursor
            .as_deref()
            .map(|c| DeliveryId::parse(c).map_err(|_| PortError::permanent("memory store", "bad cursor")))
            .transpose()?;
        let all = self.deliveries.lock().unwrap();
        let mut matching: Vec<Delivery> = all
            .values()
            .map(|r| r.delivery.clone())
            .filter(|d| q.tenant.as_ref().is_none_or(|t| &d.tenant_id == t))
            .filter(|d| q.endpoint.as_ref().is_none_or(|e| &d.endpoint_id == e))
            .filter(|d| q.status.is_none_or(|s| d.status == s))
            .filter(|d| q.event_type.as_ref().is_none_or(|t| &d.event_type == t))
            .filter(|d| d.created_at >= q.since && d.created_at <= q.until)
            .collect();
        matching.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        let start = after.map_or(0, |a| {
            matching
                .iter()
                .position(|d| d.id == a)
                .map_or(matching.len(), |p| p + 1)
        });
        let items: Vec<Delivery> = matching
            .iter()
            .skip(start)
            .take(q.limit as usize)
            .cloned()
            .collect();
        let more = start + items.len() < matching.len();
        let next_cursor = if more {
            items.last().map(|d| d.id.to_string())
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    async fn replace_delivery(&self, seen: &Delivery, updated: &Delivery) -> PortResult<bool> {
        self.check()?;
        let mut all = self.deliveries.lock().unwrap();
        match all.get_mut(&(seen.event_key(), seen.endpoint_id.clone())) {
            Some(r)
                if r.delivery.attempts == seen.attempts
                    && r.delivery.status == seen.status
                    && r.delivery.wake == seen.wake =>
            {
                r.delivery = updated.clone();
                r.due_at = Self::due_of(updated);
                r.lease_until = None;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn count_open(&self, limit: u32) -> PortResult<OpenDeliveries> {
        self.check()?;
        let all = self.deliveries.lock().unwrap();
        let dues: Vec<Timestamp> = all.values().filter_map(|r| r.due_at).collect();
        Ok(OpenDeliveries {
            open: u32::try_from(dues.len()).unwrap_or(u32::MAX).min(limit),
            oldest_due_at: dues.iter().min().copied(),
        })
    }
}
