//! The console: static files compiled into the binary and served at `/console`, under a
//! Content-Security-Policy that lets the page load nothing but its own files and talk to
//! nothing but this API. The page renders every value as text (`console/dom.js`).

use crate::HttpResult;
use hookline::problem::Problem;
use http::header;

/// One file of the console.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static str,
    /// A strong validator, fixed at compile time: the file's FNV-1a hash.
    pub etag: &'static str,
}

macro_rules! asset {
    ($name:literal, $type:expr) => {{
        const BODY: &str = include_str!(concat!("../console/", $name));
        const ETAG: [u8; 18] = etag_of(BODY.as_bytes());
        Asset {
            name: $name,
            content_type: $type,
            body: BODY,
            // Hex digits and quotes only, so always UTF-8.
            etag: match std::str::from_utf8(&ETAG) {
                Ok(s) => s,
                Err(_) => panic!("an etag is ASCII"),
            },
        }
    }};
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file; the first is the page itself (`/console`).
pub static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("chart.js", JS),
    asset!("overview.js", JS),
    asset!("tenants.js", JS),
    asset!("endpoints.js", JS),
    asset!("endpoint.js", JS),
    asset!("deliveries.js", JS),
    asset!("delivery.js", JS),
    asset!("event.js", JS),
];

/// Nothing from elsewhere, no inline script or style, no framing, no plugins; the page
/// may only call this API (`connect-src 'self'`).
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// `"` + 16 hex digits + `"`.
const fn etag_of(bytes: &[u8]) -> [u8; 18] {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        h ^= bytes[i] as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    let digits = b"0123456789abcdef";
    let mut out = [b'"'; 18];
    let mut j = 0;
    while j < 16 {
        out[1 + j] = digits[((h >> (60 - 4 * j)) & 0xf) as usize];
        j += 1;
    }
    out
}

/// `GET /console` and `GET /console/<file>`: the file, or 304 when the browser holds it.
pub fn serve(file: Option<&str>, method: &http::Method, if_none_match: Option<&str>) -> HttpResult {
    if method != http::Method::GET && method != http::Method::HEAD {
        return Err(Problem::method_not_allowed("the console takes GET"));
    }
    let asset = match file {
        None | Some("index.html") => &ASSETS[0],
        Some(name) => ASSETS
            .iter()
            .find(|a| a.name == name)
            .ok_or_else(|| Problem::not_found(format!("the console has no file `{name}`")))?,
    };
    let fresh = if_none_match.is_some_and(|v| v.split(',').any(|t| t.trim() == asset.etag));
    let res = http::Response::builder()
        .status(if fresh { 304 } else { 200 })
        .header(header::CONTENT_TYPE, asset.content_type)
        .header(header::ETAG, asset.etag)
        // Checked every time (a deploy changes the files), sent again only when changed.
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header(header::X_FRAME_OPTIONS, "DENY")
        .header(header::REFERRER_POLICY, "no-referrer")
        .body(if fresh || method == http::Method::HEAD {
            String::new()
        } else {
            asset.body.to_owned()
        })
        .map_err(|_| Problem::internal())?;
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_is_served_under_a_policy_that_allows_only_its_own_files() {
        let res = serve(None, &http::Method::GET, None).expect("the page");
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()[header::CONTENT_SECURITY_POLICY], CSP);
        assert!(CSP.starts_with("default-src 'self';"));
        assert!(!CSP.contains("unsafe"), "no unsafe-inline or unsafe-eval");
        assert!(
            res.body()
                .contains("<script type=\"module\" src=\"/console/app.js\">")
        );
    }

    #[test]
    fn every_file_the_page_imports_is_served() {
        for a in ASSETS {
            for line in a.body.lines() {
                let Some(rest) = line.split(" from \"./").nth(1) else {
                    continue;
                };
                let imported = rest.split('"').next().unwrap_or_default();
                assert!(
                    ASSETS.iter().any(|b| b.name == imported),
                    "{} imports {imported}, which is not served",
                    a.name
                );
            }
        }
    }

    #[test]
    fn no_file_writes_html_from_a_string() {
        for a in ASSETS.iter().filter(|a| a.name.ends_with(".js")) {
            for bad in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!a.body.contains(bad), "{} uses {bad}", a.name);
            }
        }
    }

    #[test]
    fn a_file_the_browser_holds_is_not_sent_again() {
        let first = serve(Some("app.js"), &http::Method::GET, None).expect("app.js");
        let tag = first.headers()[header::ETAG].to_str().expect("ascii").to_owned();
        let again = serve(Some("app.js"), &http::Method::GET, Some(&tag)).expect("app.js");
        assert_eq!(again.status(), 304);
        assert!(again.body().is_empty());
        assert_eq!(
            serve(Some("nope.js"), &http::Method::GET, None)
                .expect_err("unknown")
                .status,
            404
        );
        assert_eq!(
            serve(None, &http::Method::POST, None).expect_err("post").status,
            405
        );
    }
}
