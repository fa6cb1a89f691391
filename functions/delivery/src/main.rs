use aws_lambda_events::event::sqs::SqsEvent;
use delivery_fn::{Config, Deliverer, EndpointCache, SlowLane};
use hookline::adapters::{aws_config, dynamo::DynamoStore, http::HttpSender, s3::S3Data, sqs::SqsQueue};
use hookline::config::Env;
use hookline::ports::SystemClock;
use lambda_runtime::{Error, LambdaEvent, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hookline::telemetry::init_tracing();
    let config = Config::from_env(Env::from_process())?;
    let aws = aws_config().await?;
    let deliverer = Deliverer {
        store: DynamoStore::new(
            hookline::adapters::dynamo::Client::new(&aws),
            config.table,
            config.retention,
        ),
        sender: HttpSender::new(config.ssrf)?,
        queue: SqsQueue::new(hookline::adapters::sqs::Client::new(&aws), config.queue_url),
        clock: SystemClock,
        data: std::sync::Arc::new(S3Data::new(S3Data::client(&aws), config.data_bucket)),
        endpoints: EndpointCache::new(config.endpoint_cache),
        settings: config.settings,
        slow_lane: config.slow_queue.map(|(url, arn)| SlowLane {
            queue: SqsQueue::new(hookline::adapters::sqs::Client::new(&aws), url).grouped_by_endpoint(),
            arn,
        }),
    };
    let deliverer = &deliverer;
    run(service_fn(move |event: LambdaEvent<SqsEvent>| async move {
        Ok::<_, Error>(deliverer.handle(event.payload).await)
    }))
    .await
}
