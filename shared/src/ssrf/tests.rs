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

/// One address in every row of the table, with the name its refusal must give.
const ROW_CASES: &[(&str, &str)] = &[
    ("0.1.2.3", "unspecified (\"this network\")"),
    ("10.20.30.40", "private"),
    ("100.127.255.254", "shared (carrier-grade NAT)"),
    ("127.0.0.2", "loopback"),
    ("169.254.0.1", "link-local"),
    ("172.16.0.1", "private"),
    ("192.0.0.8", "IETF protocol assignment"),
    ("192.0.2.55", "documentation"),
    ("192.88.99.1", "6to4 relay anycast"),
    ("192.168.255.255", "private"),
    ("198.19.0.1", "benchmarking"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("239.255.255.250", "multicast"),
    ("255.255.255.255", "reserved"),
    ("[::]", "unspecified"),
    ("[::1]", "loopback"),
    ("[::8.8.8.8]", "IPv4-compatible (deprecated)"),
    ("[::ffff:0:8.8.8.8]", "IPv4-translated"),
    ("[64:ff9b::808:808]", "NAT64"),
    ("[64:ff9b:1::808:808]", "NAT64 (local use)"),
    ("[100::1]", "discard-only"),
    ("[2001:0:4136:e378:8000:63bf:f7f7:f7f7]", "Teredo"),
    ("[2001:2::1]", "IETF protocol assignment"),
    ("[2001:db8::1]", "documentation"),
    ("[2002:808:808::1]", "6to4"),
    ("[3fff::1]", "documentation"),
    ("[5f00::1]", "SRv6 segment identifier"),
    ("[fd12:3456::1]", "unique-local"),
    ("[fe80::1]", "link-local"),
    ("[fec0::1]", "site-local (deprecated)"),
    ("[ff02::1]", "multicast"),
];

#[test]
fn every_row_of_the_special_purpose_table_is_refused_with_its_name() {
    for (host, name) in ROW_CASES {
        let url = format!("http://{host}/");
        match refused(&strict(), &url) {
            DestinationError::NotPublic { class, .. } => assert_eq!(class, *name, "{url}"),
            other => panic!("{url}: {other:?}"),
        }
    }
}

#[test]
fn every_row_of_the_table_has_a_case_and_a_source() {
    for row in V4.iter().chain(V6) {
        assert!(!row.source.is_empty(), "{}", row.net);
        let net: IpNet = row.net.parse().unwrap_or_else(|_| panic!("{} parses", row.net));
        let covered = ROW_CASES.iter().any(|(host, name)| {
            let ip: IpAddr = host.trim_matches(['[', ']']).parse().unwrap();
            net.contains(&ip) && *name == row.name
        });
        assert!(covered, "no case for {} ({})", row.net, row.name);
    }
}

#[test]
fn outside_2000_slash_3_nothing_is_global_unicast() {
    for url in ["http://[4000::1]/", "http://[8000::1]/", "http://[100:0:0:1::1]/"] {
        assert!(
            matches!(
                refused(&strict(), url),
                DestinationError::NotPublic {
                    class: "not global unicast" | "discard-only",
                    ..
                }
            ),
            "{url}"
        );
    }
}

#[test]
fn every_ipv6_form_that_carries_the_metadata_address_is_refused_as_metadata() {
    for url in [
        "http://[::ffff:a9fe:a9fe]/",          // IPv4-mapped
        "http://[::ffff:0:a9fe:a9fe]/",        // IPv4-translated
        "http://[::a9fe:a9fe]/",               // IPv4-compatible
        "http://[64:ff9b::a9fe:a9fe]/",        // NAT64
        "http://[64:ff9b:1::a9fe:a9fe]/",      // NAT64, local use
        "http://[2002:a9fe:a9fe::1]/",         // 6to4
        "http://[2001:0:a9fe:a9fe::1]/",       // Teredo server
        "http://[2001:0:808:808::5601:5601]/", // Teredo client (inverted)
    ] {
        let err = refused(&strict(), url);
        assert!(
            matches!(
                err,
                DestinationError::Metadata { .. } | DestinationError::EmbedsMetadata { .. }
            ),
            "{url}: {err:?}"
        );
    }
    // Not even an operator's allowed range opens them.
    let open = SsrfPolicy::parse_allowed("::/0,0.0.0.0/0").unwrap();
    for url in ["http://[64:ff9b::a9fe:a9fe]/", "http://[2002:a9fe:a9fe::1]/"] {
        assert!(
            matches!(refused(&open, url), DestinationError::EmbedsMetadata { .. }),
            "{url}"
        );
    }
}

#[test]
fn an_allowed_translation_range_still_judges_the_address_it_carries() {
    // A deployment behind NAT64 allows its prefix: public IPv4 through it pass, private
    // ones it carries do not.
    let nat64 = SsrfPolicy::parse_allowed("64:ff9b::/96").unwrap();
    assert!(nat64.parse_destination("http://[64:ff9b::808:808]/").is_ok());
    match refused(&nat64, "http://[64:ff9b::a00:1]/") {
        DestinationError::EmbedsNotPublic { embedded, class, .. } => {
            assert_eq!((embedded.to_string().as_str(), class), ("10.0.0.1", "private"));
        }
        other => panic!("{other:?}"),
    }
    let msg = refused(&nat64, "http://[64:ff9b::7f00:1]/").to_string();
    assert!(msg.contains("127.0.0.1, a loopback address"), "{msg}");
}

#[test]
fn port_zero_and_urls_the_parser_would_quietly_change_are_refused() {
    let new = |url: &str| strict().parse_new_destination(url).expect_err(url);
    assert_eq!(new("http://93.184.215.14:0/"), DestinationError::PortZero);
    for url in [
        "http://exa\r\nmple.com/",
        "http://example.com/a\nb",
        "http://example.com/\t",
        " http://example.com/",
        "http://example.com/ ",
        "http://example.com/a b",
        "http://example.com/\u{0}",
        "http://example.com/\u{85}",
    ] {
        assert_eq!(new(url), DestinationError::Whitespace, "{url:?}");
        // A URL stored before these were refused is still sent to as it was.
        assert!(!matches!(
            strict().parse_destination(url),
            Err(DestinationError::Whitespace)
        ));
    }
}

#[test]
fn the_length_limit_holds_for_the_url_as_sent_not_only_as_typed() {
    // 700 characters typed, each three bytes once percent-encoded: 2,100 as sent.
    let url = format!("https://example.com/{}", "é".repeat(700));
    assert!(url.chars().count() < 2048);
    assert_eq!(refused(&strict(), &url), DestinationError::TooLong { max: 2048 });
}
