use hookline::adapters::{aws_config, dynamo::DynamoStore, s3::S3Data, secrets, sqs::SqsQueue};
use hookline::config::Env;
use hookline::ports::SystemClock;
use ingest_fn::{Config, Ingest};
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hookline::telemetry::init_tracing();
    let config = Config::from_env(Env::from_process())?;
    let aws = aws_config().await?;
    let app = Ingest {
        keys: secrets::resolve(config.keys, || secrets::Client::new(&aws)).await?,
        queue: SqsQueue::new(hookline::adapters::sqs::Client::new(&aws), config.queue_url),
        // Ingest reads, and writes only rate buckets, which carry their own expiry.
        events: DynamoStore::new(
            hookline::adapters::dynamo::Client::new(&aws),
            config.table,
            std::time::Duration::ZERO,
        ),
        data: std::sync::Arc::new(S3Data::new(S3Data::client(&aws), config.data_bucket)),
        clock: SystemClock,
        max_body_bytes: config.max_body_bytes,
        limits: config.limits,
        // As long as the delivery function keeps its endpoint list at most.
        ordered: ingest_fn::OrderedEndpointCache::new(std::time::Duration::from_secs(5)),
    };
    let app = &app;
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(app.handle(req).await)
    }))
    .await
}
