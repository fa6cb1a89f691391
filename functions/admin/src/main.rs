use admin_fn::{Admin, Config};
use hookline::adapters::{
    aws_config, dynamo::DynamoStore, http::HttpSender, probe::TcpProbe, secrets, sqs::SqsQueue,
};
use hookline::config::Env;
use hookline::ports::SystemClock;
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hookline::telemetry::init_tracing();
    let config = Config::from_env(Env::from_process())?;
    let aws = aws_config().await?;
    let admin = Admin {
        keys: secrets::resolve(config.keys, || secrets::Client::new(&aws)).await?,
        store: DynamoStore::new(
            hookline::adapters::dynamo::Client::new(&aws),
            config.table,
            config.retention,
        ),
        queue: SqsQueue::new(hookline::adapters::sqs::Client::new(&aws), config.queue_url),
        sender: HttpSender::new(config.ssrf.clone())?,
        probe: TcpProbe,
        data: std::sync::Arc::new(hookline::adapters::s3::S3Data::new(
            hookline::adapters::s3::S3Data::client(&aws),
            config.data_bucket,
        )),
        clock: SystemClock,
        ssrf: config.ssrf,
        retention: config.retention,
        disable_after: config.disable_after,
        limits: config.limits,
    };
    let admin = &admin;
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(admin.handle(req).await)
    }))
    .await
}
