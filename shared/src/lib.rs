//! Hookline's library: the domain (no AWS or Lambda types), the ports the handlers
//! depend on, and the adapters that implement them with DynamoDB, SQS and reqwest.

pub mod access;
pub mod adapters;
pub mod api;
pub mod attempt_metrics;
pub mod auth;
pub mod claim_check;
pub mod collapse;
pub mod config;
pub mod dead_letter;
pub mod delivery;
pub mod delivery_status;
pub mod diagnosis;
pub mod endpoint;
pub mod endpoint_health;
pub mod endpoint_input;
pub mod endpoint_view;
pub mod event;
pub mod event_conflict;
pub mod event_input;
pub mod event_limits;
pub mod expiry;
#[cfg(any(test, feature = "fuzzing"))]
pub mod fuzzing;
pub mod give_up;
pub mod hop;
pub mod id_batch;
pub mod ids;
pub mod lane;
pub mod langgraph;
pub mod matching;
#[cfg(any(test, feature = "memory"))]
pub mod memory;
pub mod message;
pub mod metric_tenants;
pub mod names;
pub mod ops;
pub mod ordering;
pub mod port_error;
pub mod portal;
pub mod ports;
pub mod problem;
pub mod ratelimit;
pub mod redaction;
pub mod replay;
pub mod retry;
pub mod signing;
pub mod ssrf;
pub mod stats;
pub mod store_failure;
pub mod strict_json;
pub mod telemetry;
pub mod tenancy;
pub mod tenant;
pub mod tenant_key;
pub mod tenant_limits;
pub mod timestamp;
pub mod verify;
pub mod webhook;

pub use event::{Event, EventType};
pub use ids::{DeliveryId, EndpointId, EventId, TenantId};
pub use timestamp::Timestamp;

/// A uniform number in `[0, 1)` for retry jitter. Jitter needs spread, not secrecy:
/// a thread-local generator, rather than a system call to the OS source per attempt.
pub fn random_unit() -> f64 {
    fastrand::f64()
}
