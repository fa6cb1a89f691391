use admin_fn::{Admin, Config};
use hookline::adapters::{aws_config, dynamo::DynamoStore};
use hookline::config::Env;
use hookline::ports::SystemClock;
use lambda_http::{Error, Request, run, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    hookline::telemetry::init_tracing();
    let config = Config::from_env(Env::from_process())?;
    let dynamo = hookline::adapters::dynamo::Client::new(&aws_config().await);
    let admin = Admin {
        keys: config.keys,
        store: DynamoStore::new(dynamo, config.table, config.retention),
        clock: SystemClock,
        ssrf: config.ssrf,
    };
    let admin = &admin;
    run(service_fn(move |req: Request| async move {
        Ok::<_, Error>(admin.handle(req).await)
    }))
    .await
}
