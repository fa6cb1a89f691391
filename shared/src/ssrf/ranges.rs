//! Which addresses are not public destinations: the IANA special-purpose registries in
//! one table, each range with the registry row (and RFC) it comes from, and the IPv6
//! forms that carry an IPv4 address inside them, which are judged by that address too.

use ipnet::{Ipv4Net, Ipv6Net};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;
use std::sync::LazyLock;

/// One special-purpose range: the name a refusal gives it, and where it is listed.
#[derive(Clone, Copy, Debug)]
pub struct Range {
    pub net: &'static str,
    pub name: &'static str,
    pub source: &'static str,
}

const fn r(net: &'static str, name: &'static str, source: &'static str) -> Range {
    Range { net, name, source }
}

/// IANA IPv4 Special-Purpose Address Registry (the rows not globally reachable), plus
/// multicast and the reserved class E from the IPv4 Address Space registry.
#[rustfmt::skip]
pub const V4: &[Range] = &[
    r("0.0.0.0/8",       "unspecified (\"this network\")", "IANA IPv4 special-purpose, RFC 791"),
    r("10.0.0.0/8",      "private",                        "IANA IPv4 special-purpose, RFC 1918"),
    r("100.64.0.0/10",   "shared (carrier-grade NAT)",     "IANA IPv4 special-purpose, RFC 6598"),
    r("127.0.0.0/8",     "loopback",                       "IANA IPv4 special-purpose, RFC 1122"),
    r("169.254.0.0/16",  "link-local",                     "IANA IPv4 special-purpose, RFC 3927"),
    r("172.16.0.0/12",   "private",                        "IANA IPv4 special-purpose, RFC 1918"),
    r("192.0.0.0/24",    "IETF protocol assignment",       "IANA IPv4 special-purpose, RFC 6890"),
    r("192.0.2.0/24",    "documentation",                  "IANA IPv4 special-purpose, RFC 5737 (TEST-NET-1)"),
    r("192.88.99.0/24",  "6to4 relay anycast",             "IANA IPv4 special-purpose, RFC 7526 (deprecated)"),
    r("192.168.0.0/16",  "private",                        "IANA IPv4 special-purpose, RFC 1918"),
    r("198.18.0.0/15",   "benchmarking",                   "IANA IPv4 special-purpose, RFC 2544"),
    r("198.51.100.0/24", "documentation",                  "IANA IPv4 special-purpose, RFC 5737 (TEST-NET-2)"),
    r("203.0.113.0/24",  "documentation",                  "IANA IPv4 special-purpose, RFC 5737 (TEST-NET-3)"),
    r("224.0.0.0/4",     "multicast",                      "IANA IPv4 address space, RFC 5771"),
    r("240.0.0.0/4",     "reserved",                       "IANA IPv4 special-purpose, RFC 1112 (and 255.255.255.255, RFC 919)"),
];

/// IANA IPv6 Special-Purpose Address Registry and IPv6 Address Space. A range inside
/// another comes first, so that the narrower name is given. `::ffff:0:0/96` (IPv4-mapped)
/// is not here: a mapped address is the IPv4 address it carries.
#[rustfmt::skip]
pub const V6: &[Range] = &[
    r("::/128",          "unspecified",                  "IANA IPv6 special-purpose, RFC 4291"),
    r("::1/128",         "loopback",                     "IANA IPv6 special-purpose, RFC 4291"),
    r("::/96",           "IPv4-compatible (deprecated)", "IANA IPv6 address space, RFC 4291"),
    r("::ffff:0:0:0/96", "IPv4-translated",              "IANA IPv6 address space (reserved ::/8), RFC 2765"),
    r("64:ff9b::/96",    "NAT64",                        "IANA IPv6 special-purpose, RFC 6052"),
    r("64:ff9b:1::/48",  "NAT64 (local use)",            "IANA IPv6 special-purpose, RFC 8215"),
    r("100::/64",        "discard-only",                 "IANA IPv6 special-purpose, RFC 6666"),
    r("2001::/32",       "Teredo",                       "IANA IPv6 special-purpose, RFC 4380"),
    r("2001::/23",       "IETF protocol assignment",     "IANA IPv6 special-purpose, RFC 2928"),
    r("2001:db8::/32",   "documentation",                "IANA IPv6 special-purpose, RFC 3849"),
    r("2002::/16",       "6to4",                         "IANA IPv6 special-purpose, RFC 3056"),
    r("3fff::/20",       "documentation",                "IANA IPv6 special-purpose, RFC 9637"),
    r("5f00::/16",       "SRv6 segment identifier",      "IANA IPv6 special-purpose, RFC 9602"),
    r("fc00::/7",        "unique-local",                 "IANA IPv6 special-purpose, RFC 4193"),
    r("fe80::/10",       "link-local",                   "IANA IPv6 special-purpose, RFC 4291"),
    r("fec0::/10",       "site-local (deprecated)",      "IANA IPv6 address space, RFC 3879"),
    r("ff00::/8",        "multicast",                    "IANA IPv6 address space, RFC 4291"),
];

/// Outside 2000::/3 nothing is allocated for global unicast (IANA IPv6 Address Space):
/// an address there that no row above names is still not a public destination.
pub const V6_NOT_GLOBAL_UNICAST: &str = "not global unicast";
const V6_GLOBAL_UNICAST: &str = "2000::/3";

/// The cloud metadata addresses: never allowed, whatever the allowed ranges say.
pub const METADATA: [IpAddr; 2] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)),
];

fn nets<N: FromStr>(rows: &[Range]) -> Vec<(N, &'static str)> {
    rows.iter()
        .filter_map(|r| Some((N::from_str(r.net).ok()?, r.name)))
        .collect()
}

static V4_NETS: LazyLock<Vec<(Ipv4Net, &'static str)>> = LazyLock::new(|| nets(V4));
static V6_NETS: LazyLock<Vec<(Ipv6Net, &'static str)>> = LazyLock::new(|| nets(V6));

/// Why an address is not a public destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressClass {
    Global,
    Metadata,
    Special(&'static str),
}

/// Classifies one address by the table alone (an IPv4-mapped address as its IPv4);
/// the addresses it embeds are `embedded_v4`'s.
pub fn classify(ip: IpAddr) -> AddressClass {
    let ip = canonical(ip);
    if METADATA.contains(&ip) {
        return AddressClass::Metadata;
    }
    match ip {
        IpAddr::V4(v4) => V4_NETS
            .iter()
            .find(|(n, _)| n.contains(&v4))
            .map_or(AddressClass::Global, |(_, name)| AddressClass::Special(name)),
        IpAddr::V6(v6) => match V6_NETS.iter().find(|(n, _)| n.contains(&v6)) {
            Some((_, name)) => AddressClass::Special(name),
            None if !in_global_unicast(v6) => AddressClass::Special(V6_NOT_GLOBAL_UNICAST),
            None => AddressClass::Global,
        },
    }
}

fn in_global_unicast(v6: Ipv6Addr) -> bool {
    Ipv6Net::from_str(V6_GLOBAL_UNICAST).is_ok_and(|n| n.contains(&v6))
}

/// IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is the IPv4 address it carries.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The IPv4 addresses an IPv6 address carries, by the form it has: IPv4-translated
/// (`::ffff:0:a.b.c.d`), IPv4-compatible (`::a.b.c.d`), NAT64 (`64:ff9b::a.b.c.d`, and
/// the local-use `64:ff9b:1::/48` in its /96 form), 6to4 (`2002:AABB:CCDD::`) and
/// Teredo (`2001:0:SSSS:SSSS:…:~CCCC:~CCCC`: the server's, and the client's inverted).
/// IPv4-mapped addresses are not here: `canonical` makes them IPv4 outright.
pub fn embedded_v4(v6: Ipv6Addr) -> Vec<Ipv4Addr> {
    let s = v6.segments();
    // The IPv4 address in two 16-bit groups.
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    let low32 = v4(s[6], s[7]);
    let in_net = |net: &str| Ipv6Net::from_str(net).is_ok_and(|n| n.contains(&v6));
    if in_net("::ffff:0:0:0/96") || in_net("64:ff9b::/96") || in_net("64:ff9b:1::/48") {
        vec![low32]
    } else if in_net("::/96") {
        // `::` and `::1` are the unspecified and loopback addresses, not compatible forms.
        if u32::from(low32) > 1 {
            vec![low32]
        } else {
            Vec::new()
        }
    } else if in_net("2002::/16") {
        vec![v4(s[1], s[2])]
    } else if in_net("2001::/32") {
        vec![v4(s[2], s[3]), Ipv4Addr::from(!u32::from(low32))]
    } else {
        Vec::new()
    }
}
