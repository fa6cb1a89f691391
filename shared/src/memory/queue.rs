//! A queue that keeps what was sent, and a dead-letter queue the test fills.

use crate::message::QueueMessage;
use crate::ports::{
    DeadLetters, MAX_QUEUE_DELAY, MAX_VISIBILITY, PortError, PortResult, Queue, QueueDepth, QueueGauge,
    Received,
};
use async_trait::async_trait;
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// A queue that keeps what was sent (with its delay) and what was hidden.
#[derive(Default)]
pub struct MemoryQueue {
    pub sent: Mutex<Vec<QueueMessage>>,
    pub delays: Mutex<Vec<Duration>>,
    pub hidden: Mutex<Vec<(String, Duration)>>,
    pub dead: Mutex<VecDeque<Received>>,
    pub unavailable: std::sync::atomic::AtomicBool,
    pub depth: Mutex<QueueDepth>,
}

impl MemoryQueue {
    pub fn sent(&self) -> Vec<QueueMessage> {
        self.sent.lock().unwrap().clone()
    }
}

#[async_trait]
impl Queue for MemoryQueue {
    async fn send(&self, message: &QueueMessage) -> PortResult<()> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(PortError::retryable("memory queue", "unavailable (test)"));
        }
        self.sent.lock().unwrap().push(message.clone());
        self.delays.lock().unwrap().push(Duration::ZERO);
        Ok(())
    }

    async fn send_after(&self, message: &QueueMessage, delay: Duration) -> PortResult<()> {
        self.send(message).await?;
        if let Some(d) = self.delays.lock().unwrap().last_mut() {
            *d = delay.min(MAX_QUEUE_DELAY);
        }
        Ok(())
    }

    async fn hide(&self, receipt_handle: &str, hidden: Duration) -> PortResult<()> {
        self.hidden
            .lock()
            .unwrap()
            .push((receipt_handle.to_owned(), hidden.min(MAX_VISIBILITY)));
        Ok(())
    }

    async fn send_batch(&self, messages: &[QueueMessage]) -> Vec<PortResult<()>> {
        let mut out = Vec::new();
        for m in messages {
            out.push(self.send(m).await);
        }
        out
    }
}

#[async_trait]
impl DeadLetters for MemoryQueue {
    async fn take(&self) -> PortResult<Vec<Received>> {
        let mut dead = self.dead.lock().unwrap();
        let n = dead.len().min(10);
        Ok(dead.drain(..n).collect())
    }

    async fn remove(&self, _receipt_handle: &str) -> PortResult<()> {
        Ok(())
    }
}

#[async_trait]
impl QueueGauge for MemoryQueue {
    async fn depth(&self) -> PortResult<QueueDepth> {
        Ok(*self.depth.lock().unwrap())
    }
}
