//! `devstack provision` makes the template's queues and table on the emulator and
//! writes their names as an env file; `devstack run` plays the SQS event-source
//! mapping (delivery) and the EventBridge schedule (sweeper) against the functions
//! that `cargo lambda watch` serves. Both read `AWS_ENDPOINT_URL` like the functions.

use devstack::esm::{EventSourceMapping, HttpInvoker, HttpSqsHandler};
use devstack::{provision, template};
use std::path::PathBuf;
use std::time::Duration;

fn usage() -> ! {
    eprintln!(
        "usage:\n  devstack provision --template FILE --prefix NAME --env-out FILE\n  \
         devstack run --lambda URL [--sweep-every SECONDS] [--pollers N] [--slow-pollers N]\n    (reads HOOKLINE_QUEUE_URL, HOOKLINE_QUEUE_ARN, and the slow lane's HOOKLINE_SLOW_QUEUE_URL, _ARN)\n  \
         devstack front --listen 127.0.0.1:PORT --to URL\n    (passes requests to cargo lambda watch; a body that is not UTF-8 reaches the function as on AWS)"
    );
    std::process::exit(2)
}

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter("info")
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("provision") => provision_cmd(&args).await,
        Some("run") => run_cmd(&args).await,
        Some("front") => front_cmd(&args).await,
        _ => usage(),
    };
    if let Err(e) = result {
        eprintln!("devstack: {e}");
        std::process::exit(1);
    }
}

async fn clients() -> Result<(aws_sdk_sqs::Client, aws_sdk_dynamodb::Client, aws_sdk_s3::Client), String> {
    let cfg = hookline::adapters::aws_config()
        .await
        .map_err(|e| e.to_string())?;
    Ok((
        aws_sdk_sqs::Client::new(&cfg),
        aws_sdk_dynamodb::Client::new(&cfg),
        hookline::adapters::s3::S3Data::client(&cfg),
    ))
}

async fn front_cmd(args: &[String]) -> Result<(), String> {
    let (Some(listen), Some(to)) = (flag(args, "--listen"), flag(args, "--to")) else {
        usage()
    };
    let listen: std::net::SocketAddr = listen.parse().map_err(|e| format!("--listen {listen}: {e}"))?;
    tracing::info!("front: {listen} -> {to}");
    tokio::select! {
        r = devstack::front::serve(listen, &to) => r.map_err(|e| e.to_string()),
        _ = tokio::signal::ctrl_c() => Ok(()),
    }
}

async fn provision_cmd(args: &[String]) -> Result<(), String> {
    let (Some(tpl), Some(prefix), Some(out)) = (
        flag(args, "--template"),
        flag(args, "--prefix"),
        flag(args, "--env-out"),
    ) else {
        usage()
    };
    let template = template::load(&PathBuf::from(tpl)).map_err(|e| e.to_string())?;
    let (sqs, dynamo, s3) = clients().await?;
    let stack = provision::provision(&template, &prefix, &sqs, &dynamo, &s3)
        .await
        .map_err(|e| e.to_string())?;
    let env = format!(
        "HOOKLINE_QUEUE_URL={}\nHOOKLINE_QUEUE_ARN={}\nHOOKLINE_SLOW_QUEUE_URL={}\nHOOKLINE_SLOW_QUEUE_ARN={}\nHOOKLINE_DLQ_URL={}\nHOOKLINE_TABLE={}\nHOOKLINE_DATA_BUCKET={}\n",
        stack.queue_url("DeliveryQueue"),
        stack.queue_arn("DeliveryQueue"),
        stack.queue_url("SlowQueue"),
        stack.queue_arn("SlowQueue"),
        stack.queue_url("DeliveryDLQ"),
        stack.table("Table"),
        stack.bucket("DataBucket"),
    );
    std::fs::write(&out, env).map_err(|e| format!("cannot write {out}: {e}"))?;
    for (id, url) in &stack.queue_urls {
        println!("  queue {id}: {url}");
    }
    for (id, name) in &stack.tables {
        println!("  table {id}: {name}");
    }
    for (id, name) in &stack.buckets {
        println!("  bucket {id}: {name}");
    }
    Ok(())
}

async fn run_cmd(args: &[String]) -> Result<(), String> {
    let Some(lambda) = flag(args, "--lambda") else {
        usage()
    };
    let every: u64 = flag(args, "--sweep-every")
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    // Lambda's event-source mapping polls with several pollers at once (five to start).
    let pollers: usize = flag(args, "--pollers")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
        .clamp(1, 100);
    let queue_url = std::env::var("HOOKLINE_QUEUE_URL").map_err(|_| "HOOKLINE_QUEUE_URL is not set")?;
    let queue_arn = std::env::var("HOOKLINE_QUEUE_ARN").map_err(|_| "HOOKLINE_QUEUE_ARN is not set")?;
    let slow_pollers: usize = flag(args, "--slow-pollers")
        .and_then(|s| s.parse().ok())
        .unwrap_or(2)
        .clamp(1, 100);
    let (sqs, _, _) = clients().await?;
    // The two lanes, as template.yaml maps them: the delivery queue and the slow lane's,
    // each with pollers of its own.
    let mut lanes = vec![(
        EventSourceMapping::new(sqs.clone(), &queue_url, &queue_arn),
        "delivery",
        pollers,
    )];
    if let (Ok(url), Ok(arn)) = (
        std::env::var("HOOKLINE_SLOW_QUEUE_URL"),
        std::env::var("HOOKLINE_SLOW_QUEUE_ARN"),
    ) {
        lanes.push((
            EventSourceMapping::new(sqs, &url, &arn),
            "delivery (slow lane)",
            slow_pollers,
        ));
    }
    for (esm, _, _) in &mut lanes {
        esm.wait = Duration::from_secs(2);
    }
    let handler = HttpSqsHandler {
        invoker: HttpInvoker::new(&lambda),
        function: "delivery".into(),
    };
    let handler = &handler;
    let sweeper = HttpInvoker::new(&lambda);

    let pump = futures::future::join_all(
        lanes
            .iter()
            .flat_map(|(esm, lane, n)| (0..*n).map(move |i| (esm, *lane, i)))
            .map(|(esm, lane, i)| poll(esm, handler, lane, i)),
    );
    let schedule = async {
        let mut tick = tokio::time::interval(Duration::from_secs(every));
        loop {
            tick.tick().await;
            let event = serde_json::json!({
                "version": "0", "id": "devstack", "detail-type": "Scheduled Event",
                "source": "aws.scheduler", "account": "000000000000",
                "time": hookline::Timestamp::now().to_rfc3339(), "region": "us-east-1", "resources": [], "detail": {}
            });
            match sweeper.invoke_json("sweeper", &event).await {
                Ok(report) => tracing::info!("sweeper: {report}"),
                Err(e) => tracing::warn!("sweeper: {e}"),
            }
        }
    };
    tokio::select! {
        _ = pump => {}
        _ = schedule => {}
        _ = tokio::signal::ctrl_c() => tracing::info!("stopping"),
    }
    Ok(())
}

/// One poller of a lane, for ever: what Lambda's event-source mapping does.
async fn poll(esm: &EventSourceMapping, handler: &HttpSqsHandler, lane: &str, n: usize) {
    loop {
        let started = std::time::Instant::now();
        match esm.poll_once(handler).await {
            Ok(s) if s.received > 0 => tracing::info!(
                poller = n,
                invoke_ms = s.invoke_ms,
                "{lane}: batch of {} handled, {} deleted, {} left for SQS to bring back ({} ms)",
                s.received,
                s.deleted,
                s.kept,
                started.elapsed().as_millis()
            ),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!("{lane}: {e}; trying again in 1 s");
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
