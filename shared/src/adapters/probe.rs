//! The diagnosis's network probe on the system resolver and plain TCP.

use crate::ports::{ConnectFailure, NetworkProbe};
use crate::ssrf::DNS_TIMEOUT;
use async_trait::async_trait;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How long a probe's connection may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, Default)]
pub struct TcpProbe;

#[async_trait]
impl NetworkProbe for TcpProbe {
    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        match tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((host, port))).await {
            Ok(Ok(found)) => Ok(found.collect()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!("no answer within {} s", DNS_TIMEOUT.as_secs())),
        }
    }

    async fn connect(&self, addr: SocketAddr) -> Result<Duration, ConnectFailure> {
        let started = Instant::now();
        match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => Ok(started.elapsed()),
            Ok(Err(err)) => Err(ConnectFailure::Failed(err.to_string())),
            Err(_) => Err(ConnectFailure::TimedOut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_listening_port_is_reached_and_a_closed_one_is_refused() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        assert!(TcpProbe.connect(open).await.is_ok());
        drop(listener);
        assert!(matches!(
            TcpProbe.connect(open).await,
            Err(ConnectFailure::Failed(_))
        ));
        let found = TcpProbe.resolve("127.0.0.1", 8080).await.unwrap();
        assert_eq!(found, vec!["127.0.0.1:8080".parse().unwrap()]);
    }
}
