//! The local stack's parts that are code: resources from `template.yaml`, the SQS
//! event-source mapping and the schedule. The dev script (`infra/dev.sh`) runs them;
//! the integration tests use the same code.

pub mod esm;
pub mod front;
pub mod provision;
pub mod template;
