use hookline::adapters::{aws_config, dynamo::DynamoStore, sqs::SqsQueue};
use hookline::config::Env;
use hookline::ports::SystemClock;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use sweeper_fn::{Config, Sweeper};

/// Retention does not matter to a reader; the sweeper writes no items yet.
const UNUSED_RETENTION: std::time::Duration = std::time::Duration::from_secs(86_400);

#[tokio::main]
async fn main() -> Result<(), Error> {
    hookline::telemetry::init_tracing();
    let config = Config::from_env(Env::from_process())?;
    let aws = aws_config().await;
    let sqs = hookline::adapters::sqs::Client::new(&aws);
    let sweeper = Sweeper {
        store: DynamoStore::new(
            hookline::adapters::dynamo::Client::new(&aws),
            config.table,
            UNUSED_RETENTION,
        ),
        queue: SqsQueue::new(sqs.clone(), config.queue_url),
        dlq: SqsQueue::new(sqs, config.dlq_url),
        clock: SystemClock,
    };
    let sweeper = &sweeper;
    // The scheduled event carries nothing the sweep needs; any JSON is accepted.
    run(service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(sweeper.sweep().await?)
    }))
    .await
}
