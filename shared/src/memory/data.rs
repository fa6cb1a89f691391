//! Checked-in event data in a map.

use crate::ports::{DataStore, PortError, PortResult};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct MemoryData {
    pub objects: Mutex<HashMap<String, Vec<u8>>>,
    /// Every call fails (retryable) while set.
    pub down: std::sync::atomic::AtomicBool,
}

impl MemoryData {
    fn up(&self, op: &'static str) -> PortResult<()> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PortError::retryable(op, "the data store is down"));
        }
        Ok(())
    }
}

#[async_trait]
impl DataStore for MemoryData {
    async fn put_data(&self, key: &str, data: Vec<u8>) -> PortResult<()> {
        self.up("PutObject")?;
        self.objects.lock().unwrap().insert(key.to_owned(), data);
        Ok(())
    }

    async fn get_data(&self, key: &str) -> PortResult<Option<Vec<u8>>> {
        self.up("GetObject")?;
        Ok(self.objects.lock().unwrap().get(key).cloned())
    }

    async fn data_url(&self, key: &str, lifetime: Duration) -> PortResult<String> {
        Ok(format!(
            "https://data.invalid/{key}?expires_in={}",
            lifetime.as_secs()
        ))
    }
}
