//! A webhook sender that answers from a script, and a clock the test moves.

use crate::delivery::AttemptOutcome;
use crate::ports::{Clock, OutboundRequest, WebhookSender};
use crate::timestamp::Timestamp;
use async_trait::async_trait;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

/// A sender that answers from a script (then 200) and records what it was asked.
#[derive(Default)]
pub struct ScriptedSender {
    pub script: Mutex<HashMap<String, VecDeque<AttemptOutcome>>>,
    pub requests: Mutex<Vec<OutboundRequest>>,
    held: Mutex<HashMap<String, Held>>,
}

/// Requests to a held URL wait for `release`; `answered` is notified as each answers.
#[derive(Clone, Default)]
pub struct Held {
    pub release: std::sync::Arc<tokio::sync::Notify>,
    pub answered: std::sync::Arc<tokio::sync::Notify>,
}

impl ScriptedSender {
    /// The next requests to `url` get these outcomes, in order.
    pub fn answer(&self, url: &str, outcomes: impl IntoIterator<Item = AttemptOutcome>) {
        self.script
            .lock()
            .unwrap()
            .entry(url.to_owned())
            .or_default()
            .extend(outcomes);
    }

    pub fn requests(&self) -> Vec<OutboundRequest> {
        self.requests.lock().unwrap().clone()
    }

    /// Requests to `url` wait until the returned `release` is notified.
    pub fn hold(&self, url: &str) -> Held {
        let held = Held::default();
        self.held.lock().unwrap().insert(url.to_owned(), held.clone());
        held
    }
}

#[async_trait]
impl WebhookSender for ScriptedSender {
    async fn post(&self, request: OutboundRequest) -> AttemptOutcome {
        let held = self.held.lock().unwrap().get(&request.url).cloned();
        if let Some(held) = &held {
            held.release.notified().await;
        }
        let next = self
            .script
            .lock()
            .unwrap()
            .get_mut(&request.url)
            .and_then(VecDeque::pop_front);
        self.requests.lock().unwrap().push(request);
        if let Some(held) = held {
            held.answered.notify_one();
        }
        next.unwrap_or(AttemptOutcome::Response {
            status: 200,
            body: "ok".into(),
            retry_after_seconds: None,
        })
    }
}

/// A clock the test moves.
pub struct ManualClock(Mutex<Timestamp>);

impl ManualClock {
    pub fn at(t: Timestamp) -> Self {
        Self(Mutex::new(t))
    }
    pub fn advance(&self, d: Duration) {
        let mut t = self.0.lock().unwrap();
        *t = t.saturating_add(d);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

/// A network as the test describes it: hosts' addresses, and which addresses accept
/// connections. Anything not described does not resolve, or refuses.
#[derive(Default)]
pub struct ScriptedProbe {
    pub hosts: Mutex<HashMap<String, Result<Vec<std::net::IpAddr>, String>>>,
    pub listening: Mutex<HashMap<std::net::SocketAddr, Result<Duration, crate::ports::ConnectFailure>>>,
}

#[async_trait]
impl crate::ports::NetworkProbe for ScriptedProbe {
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<std::net::SocketAddr>, String> {
        match self.hosts.lock().unwrap().get(host) {
            Some(Ok(ips)) => Ok(ips
                .iter()
                .map(|ip| std::net::SocketAddr::new(*ip, port))
                .collect()),
            Some(Err(e)) => Err(e.clone()),
            None => host
                .parse::<std::net::IpAddr>()
                .map(|ip| vec![std::net::SocketAddr::new(ip, port)])
                .map_err(|_| format!("`{host}` is not in the test's network")),
        }
    }

    async fn connect(&self, addr: std::net::SocketAddr) -> Result<Duration, crate::ports::ConnectFailure> {
        self.listening
            .lock()
            .unwrap()
            .get(&addr)
            .cloned()
            .unwrap_or_else(|| {
                Err(crate::ports::ConnectFailure::Failed(
                    "connection refused (test)".into(),
                ))
            })
    }
}
