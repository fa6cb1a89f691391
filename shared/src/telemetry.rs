//! Logs (tracing, JSON on Lambda) and metrics (CloudWatch Embedded Metric Format
//! lines on stdout, which CloudWatch turns into metrics without an API call).

use serde_json::{Map, Value, json};
use tracing_subscriber::EnvFilter;

/// Sets up tracing once per process: JSON on Lambda (or with `HOOKLINE_LOG_FORMAT=json`),
/// readable text otherwise. The level comes from `RUST_LOG`, else `HOOKLINE_LOG_LEVEL`.
pub fn init_tracing() {
    let level = std::env::var("HOOKLINE_LOG_LEVEL").unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let format = std::env::var("HOOKLINE_LOG_FORMAT").ok();
    let on_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let json = match format.as_deref() {
        Some("json") => true,
        Some(_) => false,
        None => on_lambda,
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .without_time()
            .try_init()
    } else {
        builder.try_init()
    };
}

pub const NAMESPACE: &str = "Hookline";

#[derive(Clone, Copy, Debug)]
pub enum Unit {
    Count,
    Milliseconds,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Self::Count => "Count",
            Self::Milliseconds => "Milliseconds",
            Self::Seconds => "Seconds",
        }
    }
}

/// One EMF record: a set of dimensions and the metrics measured under them.
#[derive(Debug, Default)]
pub struct Metrics {
    dimensions: Vec<(&'static str, String)>,
    rollups: Vec<Vec<&'static str>>,
    metrics: Vec<(&'static str, Value, Unit)>,
    properties: Vec<(&'static str, Value)>,
}

impl Metrics {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn dimension(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.dimensions.push((name, value.into()));
        self
    }

    /// Also publishes the metrics under fewer dimensions (`&[]`: the total), which
    /// CloudWatch alarms need: they cannot add up a metric's dimension values.
    pub fn rollup(mut self, names: &[&'static str]) -> Self {
        self.rollups.push(names.to_vec());
        self
    }

    pub fn metric(mut self, name: &'static str, value: f64, unit: Unit) -> Self {
        self.metrics.push((name, json!(value), unit));
        self
    }

    /// Many samples of one metric in one line (EMF takes up to 100 per metric).
    pub fn samples(mut self, name: &'static str, values: &[f64], unit: Unit) -> Self {
        self.metrics.push((name, json!(values), unit));
        self
    }

    /// Searchable in the log, not a metric (ids, for example).
    pub fn property(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.properties.push((name, value.into()));
        self
    }

    pub fn to_line(&self, unix_millis: i64) -> String {
        let mut root = Map::new();
        let dims: Vec<&str> = self.dimensions.iter().map(|(k, _)| *k).collect();
        let sets: Vec<&[&str]> = std::iter::once(dims.as_slice())
            .chain(self.rollups.iter().map(Vec::as_slice))
            .collect();
        let defs: Vec<Value> = self
            .metrics
            .iter()
            .map(|(n, _, u)| json!({"Name": n, "Unit": u.as_str()}))
            .collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": unix_millis,
                "CloudWatchMetrics": [{"Namespace": NAMESPACE, "Dimensions": sets, "Metrics": defs}]
            }),
        );
        for (k, v) in &self.dimensions {
            root.insert((*k).into(), Value::from(v.clone()));
        }
        for (k, v) in &self.properties {
            root.insert((*k).into(), v.clone());
        }
        for (n, v, _) in &self.metrics {
            root.insert((*n).into(), v.clone());
        }
        Value::Object(root).to_string()
    }

    /// Writes the record as one stdout line, where the Lambda log agent picks it up.
    pub fn emit(self) {
        println!("{}", self.to_line(crate::Timestamp::now().unix_millis()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_lines_declare_their_metrics_and_carry_the_values() {
        let line = Metrics::new()
            .dimension("Function", "delivery")
            .metric("Latency", 12.0, Unit::Milliseconds)
            .property("event_id", "evt_1")
            .to_line(1_700_000_000_000);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Hookline");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Function"]])
        );
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"],
            "Milliseconds"
        );
        assert_eq!(v["Latency"], 12.0);
        assert_eq!(v["Function"], "delivery");
        assert_eq!(v["event_id"], "evt_1");
    }

    #[test]
    fn samples_go_out_as_one_array() {
        let line = Metrics::new()
            .dimension("Outcome", "delivered")
            .metric("Attempts", 3.0, Unit::Count)
            .samples("AttemptLatency", &[4.0, 5.0, 90.0], Unit::Milliseconds)
            .to_line(1_700_000_000_000);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["Attempts"], 3.0);
        assert_eq!(v["AttemptLatency"], json!([4.0, 5.0, 90.0]));
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"][1],
            json!({"Name": "AttemptLatency", "Unit": "Milliseconds"})
        );
    }

    #[test]
    fn rollups_publish_the_same_values_under_fewer_dimensions() {
        let line = Metrics::new()
            .dimension("Outcome", "delivered")
            .dimension("StatusClass", "2xx")
            .rollup(&["Outcome"])
            .rollup(&[])
            .metric("Attempts", 1.0, Unit::Count)
            .to_line(0);
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["Outcome", "StatusClass"], ["Outcome"], []])
        );
        assert_eq!(v["Attempts"], 1.0);
    }
}
