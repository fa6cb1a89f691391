//! The tenant portal's links and sessions. An operator makes a link for a tenant: a
//! token good for one exchange, within its time, for a portal session (a key of scope
//! `portal`: the tenant's endpoints and deliveries, read and changed; no events, no
//! keys, no other tenant). The token travels in the link's fragment (`#token=`), which a
//! browser never sends, so it is in no server's log; the console exchanges it.

use crate::api::{object, refuse_unknown_fields};
use crate::problem::FieldProblem;
use serde_json::Value;
use std::time::Duration;

/// How long a link may be opened, unless the operator says.
pub const DEFAULT_LINK: Duration = Duration::from_secs(3600);
/// The longest a link may be opened for.
pub const MAX_LINK: Duration = Duration::from_secs(7 * 86_400);
/// How long a session lasts from the exchange.
pub const SESSION: Duration = Duration::from_secs(8 * 3600);
/// Where the console is served; a link opens it with its token in the fragment.
pub const CONSOLE_PATH: &str = "/console";

/// How long a new link may be opened for, from `{expires_in?}` (seconds).
pub fn parse_link_request(v: &Value) -> Result<Duration, Vec<FieldProblem>> {
    let mut errors = Vec::new();
    let Some(obj) = object(v, "/", &mut errors) else {
        return Err(errors);
    };
    refuse_unknown_fields(obj, &["expires_in"], "", &mut errors);
    let max = MAX_LINK.as_secs();
    let expires_in = match obj.get("expires_in") {
        None | Some(Value::Null) => DEFAULT_LINK,
        Some(n) => match n.as_u64() {
            Some(secs) if (60..=max).contains(&secs) => Duration::from_secs(secs),
            _ => {
                errors.push(FieldProblem::new(
                    "/expires_in",
                    format!("must be whole seconds from 60 to {max} (7 days)"),
                ));
                DEFAULT_LINK
            }
        },
    };
    if errors.is_empty() {
        Ok(expires_in)
    } else {
        Err(errors)
    }
}

/// The link's path: the console, with the token where no server sees it.
pub fn link_path(token: &str) -> String {
    format!("{CONSOLE_PATH}#token={token}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_link_lasts_an_hour_unless_asked_and_never_past_a_week() {
        assert_eq!(parse_link_request(&json!({})), Ok(DEFAULT_LINK));
        assert_eq!(
            parse_link_request(&json!({"expires_in": 600})),
            Ok(Duration::from_secs(600))
        );
        for bad in [
            json!({"expires_in": 604_801}),
            json!({"expires_in": 0}),
            json!({"expires_in": "1h"}),
            json!({"x": 1}),
        ] {
            assert!(parse_link_request(&bad).is_err(), "{bad}");
        }
        assert_eq!(link_path("hk_a.key_1.s"), "/console#token=hk_a.key_1.s");
    }
}
