//! What stands between an endpoint and its webhooks, and what to do about it: its
//! host's addresses and which of them Hookline may reach, whether something accepts
//! connections there, the last day's failures and latency, and the auto-disable clock.
//! The findings come from the network probe and the hourly counters; this module only
//! judges them.

use crate::endpoint::{Endpoint, EndpointStatus};
use crate::ports::ConnectFailure;
use crate::ssrf::SsrfPolicy;
use crate::stats::HourStats;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

/// The host and port the endpoint's URL points at.
pub fn target(url: &str) -> (String, u16) {
    let url = url::Url::parse(url).ok();
    let host = url
        .as_ref()
        .and_then(|u| u.host_str())
        .unwrap_or_default()
        .trim_matches(['[', ']'])
        .to_owned();
    let port = url
        .as_ref()
        .and_then(url::Url::port_or_known_default)
        .unwrap_or(443);
    (host, port)
}

/// The addresses Hookline may reach, of those the host resolved to.
pub fn reachable(policy: &SsrfPolicy, addresses: &[SocketAddr]) -> Vec<SocketAddr> {
    addresses
        .iter()
        .copied()
        .filter(|a| policy.check_ip(a.ip()).is_ok())
        .collect()
}

/// What the probe and the counters found.
pub struct Findings {
    pub host: String,
    /// The host's addresses, or why it did not resolve.
    pub resolved: Result<Vec<SocketAddr>, String>,
    /// The first address Hookline may reach, and how connecting to it went; `None`
    /// when there is no such address.
    pub connected: Option<(SocketAddr, Result<Duration, ConnectFailure>)>,
    /// The last day's attempts.
    pub day: HourStats,
}

/// The diagnosis as the API shows it, with its advice (`No problem found.` when none).
pub fn report(e: &Endpoint, policy: &SsrfPolicy, f: &Findings, disable_after: Duration) -> Value {
    let mut advice: Vec<String> = Vec::new();
    let host = &f.host;
    let addresses = f.resolved.as_deref().unwrap_or_default();
    let checked: Vec<Value> = addresses
        .iter()
        .map(|a| match policy.check_ip(a.ip()) {
            Ok(()) => json!({"address": a.ip().to_string(), "allowed": true}),
            Err(why) => json!({"address": a.ip().to_string(), "allowed": false, "reason": why.to_string()}),
        })
        .collect();
    let dns_error = f.resolved.as_ref().err();
    if let Some(err) = dns_error {
        advice.push(format!(
            "The host `{host}` does not resolve ({err}): check the URL's host name."
        ));
    } else if f.connected.is_none() {
        advice.push(format!(
            "`{host}` resolves only to addresses Hookline may not reach (not public): point the endpoint at a public address."
        ));
    }

    let reach = match &f.connected {
        None => json!({"checked": false}),
        Some((addr, Ok(took))) => json!({"checked": true, "reachable": true, "address": addr.to_string(),
                                         "connect_ms": took.as_millis() as u64}),
        Some((addr, Err(ConnectFailure::Failed(err)))) => {
            advice.push(format!("Nothing accepts connections at {addr}: is the receiver running, and the port open to the internet?"));
            json!({"checked": true, "reachable": false, "address": addr.to_string(), "error": err})
        }
        Some((addr, Err(ConnectFailure::TimedOut))) => {
            advice.push(format!(
                "Connecting to {addr} timed out after 5 s: a firewall may be dropping the traffic."
            ));
            json!({"checked": true, "reachable": false, "address": addr.to_string(), "error": "timed out after 5 s"})
        }
    };

    let day = &f.day;
    let summary = day.summary();
    let id = &e.id;
    if day.attempts >= 3 && day.attempt_failures * 2 > day.attempts {
        advice.push(format!(
            "{} of the last day's {} attempts failed: the errors are in GET /v1/deliveries?endpoint_id={id}&status=retrying.",
            day.attempt_failures, day.attempts
        ));
    }
    if let Some(mean) = summary.mean_response_ms
        && mean * 10 > u64::from(e.timeout_seconds) * 1000 * 8
    {
        advice.push(format!(
            "Answers take {mean} ms on average, close to the {} s timeout: answer 2xx first and do the work afterwards, or raise timeout_seconds.",
            e.timeout_seconds
        ));
    }

    let disables_at = e.failing_since.map(|t| t.saturating_add(disable_after));
    match (&e.status, e.failing_since) {
        (EndpointStatus::Disabled, _) => advice.push(format!(
            "It is disabled ({}): once the receiver is fixed, enable it with PATCH {{\"status\": \"active\"}} and send the missed webhooks again with POST /v1/endpoints/{id}/recover.",
            e.disabled_reason.as_deref().unwrap_or("by an operator")
        )),
        (_, Some(since)) => advice.push(format!(
            "Every attempt has failed since {since}; it will be disabled at {} unless one succeeds.",
            disables_at.map(|t| t.to_rfc3339()).unwrap_or_default()
        )),
        _ => {}
    }
    if advice.is_empty() {
        advice.push("No problem found.".into());
    }
    json!({
        "endpoint_id": id,
        "url": e.url,
        "dns": {"host": host, "resolved": dns_error.is_none(), "error": dns_error, "addresses": checked},
        "reachability": reach,
        "last_24h": summary,
        "status": e.status,
        "disabled_reason": e.disabled_reason,
        "failing_since": e.failing_since,
        "disables_at": disables_at,
        "advice": advice,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::EventTypeFilter;
    use crate::timestamp::Timestamp;

    const T0: i64 = 1_795_935_600_000;

    fn endpoint(url: &str) -> Endpoint {
        Endpoint::new(
            "crm".into(),
            url.into(),
            vec![EventTypeFilter::All],
            Timestamp::from_unix_millis(T0),
        )
    }

    fn policy() -> SsrfPolicy {
        SsrfPolicy::parse_allowed("127.0.0.0/8").unwrap()
    }

    fn advice(v: &Value) -> Vec<String> {
        serde_json::from_value(v["advice"].clone()).unwrap()
    }

    const DAYS5: Duration = Duration::from_secs(5 * 86_400);

    #[test]
    fn a_url_names_its_host_and_port_or_the_schemes_default() {
        assert_eq!(
            target("https://crm.example.com/hook"),
            ("crm.example.com".into(), 443)
        );
        assert_eq!(target("http://[::1]:8080/"), ("::1".into(), 8080));
        assert_eq!(target("http://127.0.0.1/"), ("127.0.0.1".into(), 80));
    }

    #[test]
    fn a_healthy_endpoint_gets_no_advice_but_its_figures() {
        let e = endpoint("http://127.0.0.1:8088/hook");
        let addr: SocketAddr = "127.0.0.1:8088".parse().unwrap();
        let mut day = HourStats::default();
        day.attempt(40, true);
        let f = Findings {
            host: "127.0.0.1".into(),
            resolved: Ok(vec![addr]),
            connected: Some((addr, Ok(Duration::from_millis(2)))),
            day,
        };
        let v = report(&e, &policy(), &f, DAYS5);
        assert_eq!(advice(&v), vec!["No problem found."]);
        assert_eq!(
            v["reachability"],
            json!({"checked": true, "reachable": true, "address": "127.0.0.1:8088", "connect_ms": 2})
        );
        assert_eq!(
            v["dns"]["addresses"],
            json!([{"address": "127.0.0.1", "allowed": true}])
        );
        assert_eq!(v["last_24h"]["attempts"], 1);
    }

    #[test]
    fn each_finding_brings_its_advice_in_order() {
        let mut e = endpoint("http://10.0.0.1:8088/hook");
        e.timeout_seconds = 1;
        e.failing_since = Some(Timestamp::from_unix_millis(T0));
        let private: SocketAddr = "10.0.0.1:8088".parse().unwrap();
        let mut day = HourStats::default();
        for _ in 0..3 {
            day.attempt(900, false);
        }
        let f = Findings {
            host: "10.0.0.1".into(),
            resolved: Ok(vec![private]),
            connected: None,
            day,
        };
        let v = report(&e, &policy(), &f, DAYS5);
        let a = advice(&v);
        assert_eq!(a.len(), 4, "{a:?}");
        assert!(a[0].contains("only to addresses Hookline may not reach"));
        assert!(a[1].starts_with("3 of the last day's 3 attempts failed"));
        assert!(a[2].starts_with("Answers take 900 ms on average, close to the 1 s timeout"));
        assert!(
            a[3].contains("it will be disabled at 2026-12-04T07:00:00Z"),
            "{}",
            a[3]
        );
        assert_eq!(v["reachability"], json!({"checked": false}));
        assert_eq!(v["dns"]["addresses"][0]["allowed"], false);
        assert_eq!(v["disables_at"], "2026-12-04T07:00:00Z");
    }

    #[test]
    fn a_host_that_does_not_resolve_or_a_port_that_refuses_says_so() {
        let e = endpoint("https://nowhere.invalid/");
        let f = Findings {
            host: "nowhere.invalid".into(),
            resolved: Err("failed to lookup address information".into()),
            connected: None,
            day: HourStats::default(),
        };
        let v = report(&e, &policy(), &f, DAYS5);
        assert_eq!(v["dns"]["resolved"], false);
        assert!(advice(&v)[0].starts_with("The host `nowhere.invalid` does not resolve"));

        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for (failure, says) in [
            (
                ConnectFailure::Failed("connection refused".into()),
                "Nothing accepts connections at 127.0.0.1:9",
            ),
            (
                ConnectFailure::TimedOut,
                "Connecting to 127.0.0.1:9 timed out after 5 s",
            ),
        ] {
            let f = Findings {
                host: "127.0.0.1".into(),
                resolved: Ok(vec![addr]),
                connected: Some((addr, Err(failure))),
                day: HourStats::default(),
            };
            let v = report(&e, &policy(), &f, DAYS5);
            assert_eq!(v["reachability"]["reachable"], false);
            assert!(advice(&v)[0].starts_with(says), "{:?}", advice(&v));
        }
    }

    #[test]
    fn a_disabled_endpoint_is_told_how_to_come_back() {
        let mut e = endpoint("http://127.0.0.1:8088/hook");
        e.status = EndpointStatus::Disabled;
        e.disabled_reason = Some("the endpoint answered 410 Gone".into());
        let addr: SocketAddr = "127.0.0.1:8088".parse().unwrap();
        let f = Findings {
            host: "127.0.0.1".into(),
            resolved: Ok(vec![addr]),
            connected: Some((addr, Ok(Duration::ZERO))),
            day: HourStats::default(),
        };
        let a = advice(&report(&e, &policy(), &f, DAYS5));
        assert_eq!(a.len(), 1);
        assert!(
            a[0].starts_with("It is disabled (the endpoint answered 410 Gone)"),
            "{a:?}"
        );
    }
}
