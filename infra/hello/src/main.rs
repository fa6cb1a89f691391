//! The cold-start baseline: the smallest `lambda_runtime` function, built with the same
//! release profile as Hookline's functions.

use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(serde_json::json!({"hello": event.payload}))
    }))
    .await
}
