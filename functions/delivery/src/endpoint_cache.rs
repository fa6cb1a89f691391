//! Endpoints, kept for a few seconds across warm invocations. One read refreshes them
//! however many events of a batch ask at once: the others wait for it.

use hookline::endpoint::Endpoint;
use hookline::ids::EndpointId;
use hookline::ports::{EndpointStore, PortResult};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The endpoints as last read, each shared by the deliveries that use it.
pub type Endpoints = Arc<Vec<Arc<Endpoint>>>;

pub struct EndpointCache {
    ttl: Duration,
    entry: tokio::sync::Mutex<Option<(Instant, Endpoints)>>,
}

impl EndpointCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entry: tokio::sync::Mutex::new(None),
        }
    }

    pub async fn all(&self, store: &impl EndpointStore) -> PortResult<Endpoints> {
        let mut entry = self.entry.lock().await;
        if let Some((at, eps)) = entry.as_ref()
            && at.elapsed() < self.ttl
        {
            return Ok(eps.clone());
        }
        let fresh: Endpoints = Arc::new(store.all_endpoints().await?.into_iter().map(Arc::new).collect());
        *entry = Some((Instant::now(), fresh.clone()));
        Ok(fresh)
    }

    /// One endpoint; one the cache does not know yet is read from the store.
    pub async fn one(
        &self,
        store: &impl EndpointStore,
        id: &EndpointId,
    ) -> PortResult<Option<Arc<Endpoint>>> {
        if let Some(e) = self.all(store).await?.iter().find(|e| &e.id == id) {
            return Ok(Some(e.clone()));
        }
        Ok(store.get_endpoint(id).await?.map(Arc::new))
    }
}
