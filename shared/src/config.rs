//! Reading a function's configuration from the environment, reporting every missing
//! or bad variable at once rather than the first.

use std::collections::HashMap;
use std::str::FromStr;
use thiserror::Error;

#[derive(Debug, Error)]
#[error("the configuration is invalid:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

pub struct Env {
    vars: HashMap<String, String>,
    problems: Vec<String>,
}

impl Env {
    pub fn from_process() -> Self {
        Self::from_map(std::env::vars().collect())
    }

    pub fn from_map(vars: HashMap<String, String>) -> Self {
        Self {
            vars,
            problems: Vec::new(),
        }
    }

    pub fn optional(&mut self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    }

    pub fn required(&mut self, name: &str) -> String {
        self.optional(name).unwrap_or_else(|| {
            self.problems.push(format!("{name} is not set"));
            String::new()
        })
    }

    pub fn parsed_or<T: FromStr>(&mut self, name: &str, default: T) -> T
    where
        T::Err: std::fmt::Display,
    {
        self.parsed_with(name, default, |s| s.parse::<T>().map_err(|e| e.to_string()))
    }

    pub fn parsed_with<T>(
        &mut self,
        name: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> T {
        match self.optional(name) {
            None => default,
            Some(raw) => parse(&raw).unwrap_or_else(|e| {
                self.problems.push(format!("{name}=`{raw}` is invalid: {e}"));
                default
            }),
        }
    }

    pub fn problem(&mut self, text: impl Into<String>) {
        self.problems.push(text.into());
    }

    pub fn finish(self) -> Result<(), ConfigError> {
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(self.problems))
        }
    }
}

/// Where a function runs: `local` allows the documented dev keys.
pub fn is_local_stage(env: &mut Env) -> bool {
    env.optional("HOOKLINE_STAGE").is_none_or(|s| s == "local")
}

pub const DEV_INGEST_KEY: &str = "dev-ingest-key";
pub const DEV_ADMIN_KEY: &str = "dev-admin-key";

/// Where the API keys come from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// Given in the environment (or the local stage's dev keys).
    Env(crate::auth::ApiKeys),
    /// Two Secrets Manager secrets (`HOOKLINE_INGEST_KEY_SECRET`, `HOOKLINE_ADMIN_KEY_SECRET`),
    /// read once per cold start.
    SecretsManager { ingest: String, admin: String },
}

/// Secrets Manager when both secret ids are set, else the environment (`api_keys`).
pub fn key_source(env: &mut Env) -> KeySource {
    match (
        env.optional("HOOKLINE_INGEST_KEY_SECRET"),
        env.optional("HOOKLINE_ADMIN_KEY_SECRET"),
    ) {
        (Some(ingest), Some(admin)) => KeySource::SecretsManager { ingest, admin },
        (None, None) => KeySource::Env(api_keys(env)),
        _ => {
            env.problem("HOOKLINE_INGEST_KEY_SECRET and HOOKLINE_ADMIN_KEY_SECRET go together");
            KeySource::Env(crate::auth::ApiKeys::new("", ""))
        }
    }
}

/// The API keys from `HOOKLINE_INGEST_KEY` and `HOOKLINE_ADMIN_KEY`. On the local
/// stage they default to the documented dev keys; elsewhere both must be set, be at
/// least 16 characters and differ.
pub fn api_keys(env: &mut Env) -> crate::auth::ApiKeys {
    let local = is_local_stage(env);
    let mut key = |name: &str, dev: &str| match env.optional(name) {
        Some(k) if !local && k.len() < 16 => {
            env.problem(format!("{name} must be at least 16 characters long"));
            k
        }
        Some(k) => k,
        None if local => dev.to_owned(),
        None => env.required(name),
    };
    let ingest = key("HOOKLINE_INGEST_KEY", DEV_INGEST_KEY);
    let admin = key("HOOKLINE_ADMIN_KEY", DEV_ADMIN_KEY);
    if !ingest.is_empty() && ingest == admin {
        env.problem("HOOKLINE_INGEST_KEY and HOOKLINE_ADMIN_KEY must differ");
    }
    crate::auth::ApiKeys::new(ingest, admin)
}

/// `HOOKLINE_ALLOWED_CIDRS`: non-public ranges that endpoints may point at.
/// `HOOKLINE_PUBLIC_DESTINATIONS=deny` closes the deployment to everything else.
pub fn ssrf_policy(env: &mut Env) -> crate::ssrf::SsrfPolicy {
    let policy = env.parsed_with(
        "HOOKLINE_ALLOWED_CIDRS",
        crate::ssrf::SsrfPolicy::default(),
        |s| crate::ssrf::SsrfPolicy::parse_allowed(s).map_err(|e| e.to_string()),
    );
    let public = env.parsed_with("HOOKLINE_PUBLIC_DESTINATIONS", true, |s| match s {
        "allow" => Ok(true),
        "deny" => Ok(false),
        _ => Err("must be `allow` or `deny`".into()),
    });
    if public { policy } else { policy.closed() }
}

/// `HOOKLINE_RETENTION_DAYS` (default 30): how long events, deliveries and attempts are kept.
pub fn retention(env: &mut Env) -> std::time::Duration {
    let days: u64 = env.parsed_with("HOOKLINE_RETENTION_DAYS", 30, |s| match s.parse::<u64>() {
        Ok(d) if (1..=3650).contains(&d) => Ok(d),
        _ => Err("must be a whole number of days from 1 to 3650".into()),
    });
    std::time::Duration::from_secs(days * 86_400)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_reported_at_once() {
        let mut env = Env::from_map(HashMap::from([("N".to_owned(), "x".to_owned())]));
        let _ = env.required("A");
        let _: u32 = env.parsed_or("N", 1);
        let err = env.finish().unwrap_err();
        assert_eq!(err.0.len(), 2);
        assert!(err.to_string().contains("A is not set"));
        assert!(err.to_string().contains("N=`x` is invalid"));
    }

    #[test]
    fn public_destinations_deny_closes_the_policy_and_a_typo_is_reported() {
        let env = |v: &str| {
            Env::from_map(HashMap::from([
                ("HOOKLINE_ALLOWED_CIDRS".to_owned(), "127.0.0.0/8".to_owned()),
                ("HOOKLINE_PUBLIC_DESTINATIONS".to_owned(), v.to_owned()),
            ]))
        };
        let mut open = env("allow");
        assert!(
            ssrf_policy(&mut open)
                .parse_destination("https://93.184.216.34/")
                .is_ok()
        );
        let mut closed = env("deny");
        let policy = ssrf_policy(&mut closed);
        assert!(policy.parse_destination("https://93.184.216.34/").is_err());
        assert!(policy.parse_destination("http://127.0.0.1:9/").is_ok());
        let mut typo = env("no");
        let _ = ssrf_policy(&mut typo);
        let err = typo.finish().unwrap_err().to_string();
        assert!(
            err.contains("HOOKLINE_PUBLIC_DESTINATIONS=`no` is invalid"),
            "{err}"
        );
    }
}
