use super::MemoryStore;
use crate::collapse::CollapseKey;
use crate::ids::EndpointId;
use crate::ports::{CollapseStore, PortResult};
use crate::timestamp::Timestamp;
use async_trait::async_trait;

#[async_trait]
impl CollapseStore for MemoryStore {
    async fn raise_newest(
        &self,
        endpoint: &EndpointId,
        key: &CollapseKey,
        rank: &str,
        _now: Timestamp,
    ) -> PortResult<String> {
        self.check()?;
        self.refuse("raise_newest")?;
        let mut newest = self.newest.lock().unwrap();
        let slot = newest
            .entry((endpoint.clone(), key.as_str().to_owned()))
            .or_insert_with(|| rank.to_owned());
        if rank > slot.as_str() {
            rank.clone_into(slot);
        }
        Ok(slot.clone())
    }

    async fn newest(&self, endpoint: &EndpointId, key: &CollapseKey) -> PortResult<Option<String>> {
        self.check()?;
        self.refuse("newest")?;
        let newest = self.newest.lock().unwrap();
        Ok(newest.get(&(endpoint.clone(), key.as_str().to_owned())).cloned())
    }
}
