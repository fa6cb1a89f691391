//! The SSRF policy: which destinations Hookline may POST to.
//!
//! A destination is refused when its host is, or resolves to, an address that is not
//! globally routable (loopback, private, link-local, unique-local, multicast, reserved,
//! documentation …), unless an operator allows its range (`HOOKLINE_ALLOWED_CIDRS`).
//! The cloud metadata addresses are refused always. The check runs at registration
//! and again at send time on the resolved address, and the connection goes to the
//! address that was checked (see `adapters::http`).

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use thiserror::Error;
use url::{Host, Url};

/// A name that does not resolve within this is treated as unresolvable.
pub const DNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Addresses that are never allowed, whatever the allowed ranges say.
const METADATA: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
];

/// IANA special-purpose IPv4 ranges, with the name the refusal gives.
const V4_RANGES: &[(&str, &str)] = &[
    ("0.0.0.0/8", "unspecified (\"this network\")"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "shared (carrier-grade NAT)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("240.0.0.0/4", "reserved"),
];

/// IANA special-purpose IPv6 ranges. IPv4-mapped addresses are judged as IPv4.
const V6_RANGES: &[(&str, &str)] = &[
    ("::/128", "unspecified"),
    ("::1/128", "loopback"),
    ("::/96", "IPv4-compatible (deprecated)"),
    ("64:ff9b::/96", "NAT64"),
    ("64:ff9b:1::/48", "NAT64 (local)"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignment"),
    ("2001:db8::/32", "documentation"),
    ("2002::/16", "6to4"),
    ("3fff::/20", "documentation"),
    ("fc00::/7", "unique-local"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local (deprecated)"),
    ("ff00::/8", "multicast"),
];

/// Why an address is not a public destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressClass {
    Global,
    Metadata,
    Special(&'static str),
}

/// Classifies an address by the IANA special-purpose registries.
pub fn classify(ip: IpAddr) -> AddressClass {
    let ip = canonical(ip);
    if METADATA.contains(&ip) {
        return AddressClass::Metadata;
    }
    match ip {
        IpAddr::V4(v4) => V4_RANGES
            .iter()
            .find(|(net, _)| Ipv4Net::from_str(net).is_ok_and(|n| n.contains(&v4)))
            .map_or(AddressClass::Global, |(_, name)| AddressClass::Special(name)),
        IpAddr::V6(v6) => V6_RANGES
            .iter()
            .find(|(net, _)| Ipv6Net::from_str(net).is_ok_and(|n| n.contains(&v6)))
            .map_or(AddressClass::Global, |(_, name)| AddressClass::Special(name)),
    }
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is the IPv4 address it carries.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DestinationError {
    #[error("is not a valid URL: {0}")]
    Syntax(String),
    #[error("must use http or https, not `{0}`")]
    Scheme(String),
    #[error("must not contain credentials (user or password)")]
    Credentials,
    #[error("must not contain a fragment (`#…`)")]
    Fragment,
    #[error("must have a host")]
    NoHost,
    #[error("must be at most {max} characters long")]
    TooLong { max: usize },
    #[error("points at {addr}, a cloud metadata address, which is never allowed")]
    Metadata { addr: IpAddr },
    #[error("points at {addr}, a {class} address; only public addresses are allowed")]
    NotPublic { addr: IpAddr, class: &'static str },
    #[error("host `{host}` could not be resolved: {reason}")]
    Unresolvable { host: String, reason: String },
    #[error("points at {what}, but this deployment only allows the ranges {allowed}")]
    OutsideAllowed { what: String, allowed: String },
}

#[derive(Debug, Error)]
#[error("`{0}` is not an IP range (CIDR)")]
pub struct CidrError(String);

/// Which non-public ranges an operator allows (the metadata addresses stay refused),
/// and whether public addresses are allowed besides (they are, unless the deployment is
/// closed: a test stack that must never reach past its allowed ranges).
#[derive(Clone, Debug)]
pub struct SsrfPolicy {
    allowed: Vec<IpNet>,
    public: bool,
}

impl Default for SsrfPolicy {
    fn default() -> Self {
        Self {
            allowed: Vec::new(),
            public: true,
        }
    }
}

impl SsrfPolicy {
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self {
            allowed,
            public: true,
        }
    }

    /// Only the allowed ranges: public addresses and host names other than `localhost`
    /// are refused, so not even a DNS query leaves the machine.
    pub fn closed(self) -> Self {
        Self {
            public: false,
            ..self
        }
    }

    fn outside(&self, what: String) -> DestinationError {
        let allowed = self
            .allowed
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ");
        DestinationError::OutsideAllowed { what, allowed }
    }

    /// Parses a comma-separated list such as `127.0.0.0/8,::1/128`.
    pub fn parse_allowed(list: &str) -> Result<Self, CidrError> {
        let allowed = list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                IpNet::from_str(s)
                    .or_else(|_| IpAddr::from_str(s).map(IpNet::from))
                    .map_err(|_| CidrError(s.to_owned()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self::new(allowed))
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), DestinationError> {
        let canon = canonical(ip);
        match classify(canon) {
            AddressClass::Metadata => Err(DestinationError::Metadata { addr: ip }),
            _ if self.allows(canon) || self.allows(ip) => Ok(()),
            AddressClass::Global if self.public => Ok(()),
            AddressClass::Global => Err(self.outside(ip.to_string())),
            AddressClass::Special(class) if !self.public => {
                Err(self.outside(format!("{ip}, a {class} address")))
            }
            AddressClass::Special(class) => Err(DestinationError::NotPublic { addr: ip, class }),
        }
    }

    fn allows(&self, ip: IpAddr) -> bool {
        self.allowed.iter().any(|n| n.contains(&ip))
    }

    /// Checks the URL's form and, when its host is an IP literal, the address.
    /// A domain host still has to be resolved and checked (`resolve_destination`).
    pub fn parse_destination(&self, raw: &str) -> Result<Destination, DestinationError> {
        const MAX: usize = 2048;
        if raw.len() > MAX {
            return Err(DestinationError::TooLong { max: MAX });
        }
        let url = Url::parse(raw).map_err(|e| DestinationError::Syntax(e.to_string()))?;
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(DestinationError::Scheme(other.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(DestinationError::Credentials);
        }
        if url.fragment().is_some() {
            return Err(DestinationError::Fragment);
        }
        // The WHATWG parser has already turned decimal, octal and hex IPv4 forms
        // (`http://2130706433/`, `http://0177.0.0.1/`) into IPv4 addresses here.
        match url.host() {
            None => return Err(DestinationError::NoHost),
            Some(Host::Ipv4(v4)) => self.check_ip(IpAddr::V4(v4))?,
            Some(Host::Ipv6(v6)) => self.check_ip(IpAddr::V6(v6))?,
            Some(Host::Domain(d)) => {
                let d = d.trim_end_matches('.').to_ascii_lowercase();
                if d == "localhost" || d.ends_with(".localhost") {
                    self.check_ip(IpAddr::V4(Ipv4Addr::LOCALHOST))?;
                } else if !self.public {
                    return Err(self.outside(format!("the host name `{d}`")));
                }
            }
        }
        Ok(Destination(url))
    }

    /// `parse_destination`, then every address the host resolves to must pass.
    pub async fn resolve_destination(&self, raw: &str) -> Result<Destination, DestinationError> {
        let dest = self.parse_destination(raw)?;
        if let Some(Host::Domain(host)) = dest.0.host() {
            let port = dest.0.port_or_known_default().unwrap_or(443);
            let lookup = tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((host, port)));
            let addrs: Vec<_> = lookup
                .await
                .map_err(|_| DestinationError::Unresolvable {
                    host: host.to_owned(),
                    reason: format!("no answer within {} s", DNS_TIMEOUT.as_secs()),
                })?
                .map_err(|e| DestinationError::Unresolvable {
                    host: host.to_owned(),
                    reason: e.to_string(),
                })?
                .collect();
            if addrs.is_empty() {
                return Err(DestinationError::Unresolvable {
                    host: host.to_owned(),
                    reason: "no addresses".into(),
                });
            }
            for a in addrs {
                self.check_ip(a.ip())?;
            }
        }
        Ok(dest)
    }
}

/// A URL that passed the SSRF policy's form check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destination(Url);

impl Destination {
    pub fn as_url(&self) -> &Url {
        &self.0
    }
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
    pub fn into_url(self) -> Url {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> SsrfPolicy {
        SsrfPolicy::default()
    }

    fn refused(policy: &SsrfPolicy, url: &str) -> DestinationError {
        policy.parse_destination(url).expect_err(url)
    }

    #[test]
    fn public_addresses_pass() {
        for url in [
            "https://93.184.215.14/hook",
            "http://[2606:2800:21f:cb07:6820:80da:af6b:8b2c]/",
            "https://example.com/x?y=1",
        ] {
            assert!(strict().parse_destination(url).is_ok(), "{url}");
        }
    }

    #[test]
    fn non_public_v4_and_v6_addresses_are_refused_by_class() {
        let cases = [
            ("http://127.0.0.1/", "loopback"),
            ("http://10.1.2.3/", "private"),
            ("http://172.31.255.255/", "private"),
            ("http://192.168.0.10/", "private"),
            ("http://169.254.1.1/", "link-local"),
            ("http://100.64.0.1/", "shared (carrier-grade NAT)"),
            ("http://0.0.0.0/", "unspecified (\"this network\")"),
            ("http://224.0.0.1/", "multicast"),
            ("http://[::1]/", "loopback"),
            ("http://[fe80::1]/", "link-local"),
            ("http://[fd12:3456::1]/", "unique-local"),
            ("http://[ff02::1]/", "multicast"),
            ("http://[::]/", "unspecified"),
            ("http://localhost:8080/", "loopback"),
            ("http://api.localhost/", "loopback"),
        ];
        for (url, class) in cases {
            match refused(&strict(), url) {
                DestinationError::NotPublic { class: c, .. } => assert_eq!(c, class, "{url}"),
                other => panic!("{url}: {other:?}"),
            }
        }
    }

    #[test]
    fn v4_mapped_v6_is_judged_as_the_v4_it_carries() {
        assert!(matches!(
            refused(&strict(), "http://[::ffff:127.0.0.1]/"),
            DestinationError::NotPublic {
                class: "loopback",
                ..
            }
        ));
        assert!(matches!(
            refused(&strict(), "http://[::ffff:a9fe:a9fe]/"),
            DestinationError::Metadata { .. }
        ));
        assert!(
            strict()
                .parse_destination("http://[::ffff:93.184.215.14]/")
                .is_ok()
        );
    }

    #[test]
    fn decimal_octal_and_hex_host_forms_are_normalised_before_the_check() {
        for url in [
            "http://2130706433/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://127.1/",
        ] {
            assert!(
                matches!(
                    refused(&strict(), url),
                    DestinationError::NotPublic {
                        class: "loopback",
                        ..
                    }
                ),
                "{url}"
            );
        }
        assert!(matches!(
            refused(&strict(), "http://2852039166/"),
            DestinationError::Metadata { .. }
        ));
    }

    #[test]
    fn allowed_ranges_open_non_public_addresses_but_never_metadata() {
        let local = SsrfPolicy::parse_allowed("127.0.0.0/8, ::1/128, 169.254.0.0/16, fd00::/8").unwrap();
        assert!(local.parse_destination("http://127.0.0.1:9000/hook").is_ok());
        assert!(local.parse_destination("http://[::1]/").is_ok());
        assert!(local.parse_destination("http://[::ffff:127.0.0.1]/").is_ok());
        assert!(matches!(
            refused(&local, "http://169.254.169.254/latest"),
            DestinationError::Metadata { .. }
        ));
        assert!(matches!(
            refused(&local, "http://[fd00:ec2::254]/"),
            DestinationError::Metadata { .. }
        ));
        assert!(matches!(
            refused(&local, "http://10.0.0.1/"),
            DestinationError::NotPublic { .. }
        ));
    }

    #[tokio::test]
    async fn a_closed_policy_allows_only_its_ranges_and_never_asks_dns() {
        let closed = SsrfPolicy::parse_allowed("127.0.0.0/8,::1/128").unwrap().closed();
        assert!(closed.parse_destination("http://127.0.0.1:9/hook").is_ok());
        assert!(closed.parse_destination("http://[::1]:9/").is_ok());
        assert!(closed.resolve_destination("http://localhost:9/").await.is_ok());
        for url in [
            "https://93.184.216.34/",
            "https://example.com/",
            "http://[2606:4700::1]/",
        ] {
            let err = closed.parse_destination(url).unwrap_err();
            assert!(
                matches!(err, DestinationError::OutsideAllowed { .. }),
                "{url}: {err:?}"
            );
            assert!(err.to_string().contains("127.0.0.0/8, ::1/128"), "{err}");
        }
        // A name is refused before any lookup, so the answer does not wait for DNS.
        let started = std::time::Instant::now();
        assert!(
            closed
                .resolve_destination("https://no-such-host.invalid/")
                .await
                .is_err()
        );
        assert!(started.elapsed() < std::time::Duration::from_millis(100));
        let err = closed.parse_destination("http://169.254.169.254/").unwrap_err();
        assert!(matches!(err, DestinationError::Metadata { .. }), "{err:?}");
    }

    #[test]
    fn url_form_is_checked() {
        assert_eq!(
            refused(&strict(), "ftp://example.com/"),
            DestinationError::Scheme("ftp".into())
        );
        assert_eq!(
            refused(&strict(), "https://u:p@example.com/"),
            DestinationError::Credentials
        );
        assert_eq!(
            refused(&strict(), "https://example.com/#x"),
            DestinationError::Fragment
        );
        assert!(matches!(
            refused(&strict(), "not a url"),
            DestinationError::Syntax(_)
        ));
        assert!(SsrfPolicy::parse_allowed("127.0.0.0/8,nope").is_err());
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_unless_allowed() {
        let err = strict()
            .resolve_destination("http://localhost.:1/")
            .await
            .unwrap_err();
        assert!(matches!(err, DestinationError::NotPublic { .. }), "{err:?}");
        let local = SsrfPolicy::parse_allowed("127.0.0.0/8,::1/128").unwrap();
        assert!(local.resolve_destination("http://localhost:1/").await.is_ok());
    }
}
