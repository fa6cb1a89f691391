use hookline::adapters::{aws_config, dynamo::DynamoStore, sqs::SqsQueue};
use hookline::config::{Env, retention};
use hookline::ports::SystemClock;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use sweeper_fn::{Config, Sweeper};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hookline::telemetry::init_tracing();
    let mut env = Env::from_process();
    let retention = retention(&mut env);
    let config = Config::from_env(env)?;
    let aws = aws_config().await?;
    let sqs = hookline::adapters::sqs::Client::new(&aws);
    let sweeper = Sweeper {
        store: DynamoStore::new(
            hookline::adapters::dynamo::Client::new(&aws),
            config.table,
            retention,
        ),
        queue: SqsQueue::new(sqs.clone(), config.queue_url),
        dlq: SqsQueue::new(sqs, config.dlq_url),
        clock: SystemClock,
        settings: config.settings,
    };
    let sweeper = &sweeper;
    // The scheduled event carries nothing the sweep needs; any JSON is accepted.
    run(service_fn(move |_: LambdaEvent<serde_json::Value>| async move {
        Ok::<_, Error>(sweeper.sweep().await?)
    }))
    .await
}
