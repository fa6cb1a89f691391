//! Endpoints, kept across warm invocations, and current for every batch: each batch
//! reads the registry's version once (one strongly consistent GetItem) and the cached
//! list is read again only when the version moved since it was read, or it is older
//! than the cache's time (`HOOKLINE_ENDPOINT_CACHE_SECONDS`, a backstop should a
//! version write fail). So an endpoint created, changed, disabled or deleted before an
//! event's 202 is honoured by that event's fan-out. One read refreshes them however
//! many events of a batch ask at once.

use hookline::endpoint::Endpoint;
use hookline::ports::{EndpointStore, PortResult};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The endpoints as read, each shared by the deliveries that use it.
pub type Endpoints = Arc<Vec<Arc<Endpoint>>>;

struct Entry {
    read_at: Instant,
    version: u64,
    endpoints: Endpoints,
}

pub struct EndpointCache {
    ttl: Duration,
    entry: tokio::sync::Mutex<Option<Entry>>,
}

impl EndpointCache {
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            entry: tokio::sync::Mutex::new(None),
        }
    }

    /// The endpoints as of now.
    pub async fn current(&self, store: &impl EndpointStore) -> PortResult<Endpoints> {
        // Read before the list: a change that lands in between moves the version again,
        // and the next batch reads the list again.
        let version = store.registry_version().await?;
        let mut entry = self.entry.lock().await;
        if let Some(e) = entry.as_ref()
            && e.version == version
            && e.read_at.elapsed() < self.ttl
        {
            return Ok(e.endpoints.clone());
        }
        let endpoints: Endpoints = Arc::new(store.all_endpoints().await?.into_iter().map(Arc::new).collect());
        *entry = Some(Entry {
            read_at: Instant::now(),
            version,
            endpoints: endpoints.clone(),
        });
        Ok(endpoints)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hookline::endpoint::EventTypeFilter;
    use hookline::memory::MemoryStore;
    use hookline::timestamp::Timestamp;

    fn endpoint(name: &str) -> Endpoint {
        Endpoint::new(
            name.into(),
            format!("https://{name}.example.com/"),
            vec![EventTypeFilter::All],
            Timestamp::from_unix_millis(0),
        )
    }

    #[tokio::test]
    async fn the_cache_holds_until_the_registry_moves_and_no_longer() {
        let store = MemoryStore::default();
        let cache = EndpointCache::new(Duration::from_secs(3600));
        store.create_endpoint(&endpoint("a")).await.unwrap();
        assert_eq!(cache.current(&store).await.unwrap().len(), 1);
        // Created after the read: seen by the next batch, not an hour later.
        let b = endpoint("b");
        store.create_endpoint(&b).await.unwrap();
        assert_eq!(cache.current(&store).await.unwrap().len(), 2);
        // Unchanged: served from the cache (a refused list read would show otherwise).
        store.refusing.lock().unwrap().push("all_endpoints");
        assert_eq!(cache.current(&store).await.unwrap().len(), 2);
        store.refusing.lock().unwrap().clear();
        store
            .disable_endpoint(&b.id, "by a test", Timestamp::from_unix_millis(0), None)
            .await
            .unwrap();
        let now = cache.current(&store).await.unwrap();
        assert!(
            now.iter()
                .any(|e| e.id == b.id && e.status == hookline::endpoint::EndpointStatus::Disabled)
        );
    }
}
