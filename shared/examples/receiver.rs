//! A webhook receiver in Rust (axum) that verifies each Hookline webhook before it
//! trusts the body, with `hookline::verify::verify_webhook`:
//!
//!     HOOKLINE_SECRET=whsec_… cargo run -p hookline-shared --example receiver -- 8089
//!
//! It listens on 127.0.0.1, answers 204 to a verified webhook (Hookline counts any 2xx
//! as delivered) and 401 to anything else, and prints what it got.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hookline::signing::EndpointSecret;
use hookline::verify::{DEFAULT_TOLERANCE_SECS, verify_webhook};
use std::sync::Arc;

async fn webhook(State(secret): State<Arc<EndpointSecret>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    if let Err(e) = verify_webhook(&secret, &headers, &body, now, DEFAULT_TOLERANCE_SECS) {
        eprintln!("refused: {e}");
        return StatusCode::UNAUTHORIZED;
    }
    // Verified: only now is the body worth parsing. Hookline may deliver an event more
    // than once (at least once), so key your side effects on `id` (= webhook-id).
    match serde_json::from_slice::<serde_json::Value>(&body) {
        Ok(event) => {
            println!("{} {} {}", event["id"], event["event_type"], event["data"]);
            StatusCode::NO_CONTENT
        }
        Err(_) => StatusCode::BAD_REQUEST,
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secret = std::env::var("HOOKLINE_SECRET")
        .map_err(|_| "set HOOKLINE_SECRET to the endpoint's whsec_… secret")?;
    let secret = Arc::new(EndpointSecret::parse(&secret)?);
    let port: u16 = std::env::args().nth(1).map_or(Ok(8089), |p| p.parse())?;
    let app = Router::new().route("/webhooks", post(webhook)).with_state(secret);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening on http://127.0.0.1:{port}/webhooks");
    axum::serve(listener, app).await?;
    Ok(())
}
