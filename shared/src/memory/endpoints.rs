//! The endpoint registry in memory.

use super::MemoryStore;
use crate::endpoint::{Endpoint, EndpointStatus};
use crate::ids::{EndpointId, TenantId};
use crate::ports::{EndpointStore, Page, PortError, PortResult};
use crate::timestamp::Timestamp;
use async_trait::async_trait;

#[async_trait]
impl EndpointStore for MemoryStore {
    async fn create_endpoint(&self, endpoint: &Endpoint) -> PortResult<()> {
        self.check()?;
        self.endpoints
            .lock()
            .unwrap()
            .insert(endpoint.id.clone(), endpoint.clone());
        self.bump_registry();
        Ok(())
    }

    async fn get_endpoint(&self, id: &EndpointId) -> PortResult<Option<Endpoint>> {
        self.refuse("get_endpoint")?;
        self.check()?;
        Ok(self.endpoints.lock().unwrap().get(id).cloned())
    }

    async fn list_endpoints(
        &self,
        tenant: Option<&TenantId>,
        limit: u32,
        cursor: Option<&str>,
    ) -> PortResult<Page<Endpoint>> {
        self.check()?;
        let all = self.endpoints.lock().unwrap();
        let after = cursor
            .map(|c| EndpointId::parse(c).map_err(|_| PortError::permanent("memory store", "bad cursor")))
            .transpose()?;
        let items: Vec<Endpoint> = all
            .values()
            .filter(|e| after.as_ref().is_none_or(|a| &e.id > a))
            .filter(|e| tenant.is_none_or(|t| &e.tenant_id == t))
            .take(limit as usize)
            .cloned()
            .collect();
        let next_cursor = (items.len() == limit as usize)
            .then(|| items.last().map(|e| e.id.to_string()))
            .flatten();
        Ok(Page { items, next_cursor })
    }

    async fn delete_endpoint(&self, endpoint: &Endpoint) -> PortResult<bool> {
        self.check()?;
        let id = &endpoint.id;
        let existed = self.endpoints.lock().unwrap().remove(id).is_some();
        if existed {
            self.bump_registry();
        }
        Ok(existed)
    }

    async fn update_endpoint(&self, endpoint: &Endpoint, read_version: u64) -> PortResult<bool> {
        self.check()?;
        let mut all = self.endpoints.lock().unwrap();
        match all.get_mut(&endpoint.id) {
            Some(e) if e.version == read_version => {
                *e = endpoint.clone();
                self.bump_registry();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn all_endpoints(&self) -> PortResult<Vec<Endpoint>> {
        self.refuse("all_endpoints")?;
        self.check()?;
        Ok(self.endpoints.lock().unwrap().values().cloned().collect())
    }

    async fn registry_version(&self) -> PortResult<u64> {
        self.check()?;
        self.refuse("registry_version")?;
        Ok(self.registry_version.load(std::sync::atomic::Ordering::SeqCst))
    }

    async fn note_failure(&self, id: &EndpointId, now: Timestamp) -> PortResult<Timestamp> {
        self.check()?;
        let mut all = self.endpoints.lock().unwrap();
        Ok(all
            .get_mut(id)
            .map_or(now, |e| *e.failing_since.get_or_insert(now)))
    }

    async fn set_lane(&self, id: &EndpointId, slow_since: Option<Timestamp>) -> PortResult<bool> {
        self.check()?;
        let mut all = self.endpoints.lock().unwrap();
        match all.get_mut(id) {
            Some(e) if e.slow_since.is_some() != slow_since.is_some() => {
                e.slow_since = slow_since;
                self.bump_registry();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn note_success(&self, id: &EndpointId) -> PortResult<()> {
        self.check()?;
        if let Some(e) = self.endpoints.lock().unwrap().get_mut(id) {
            e.failing_since = None;
        }
        Ok(())
    }

    async fn disable_endpoint(
        &self,
        id: &EndpointId,
        reason: &str,
        now: Timestamp,
        failing_before: Option<Timestamp>,
    ) -> PortResult<bool> {
        self.check()?;
        let mut all = self.endpoints.lock().unwrap();
        match all.get_mut(id) {
            Some(e)
                if e.status == EndpointStatus::Active
                    && failing_before.is_none_or(|cut| e.failing_since.is_some_and(|f| f <= cut)) =>
            {
                e.status = EndpointStatus::Disabled;
                e.disabled_reason = Some(reason.to_owned());
                e.updated_at = now;
                e.version += 1;
                self.bump_registry();
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}
