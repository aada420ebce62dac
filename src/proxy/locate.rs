//! Locating a SIP server (RFC 3263 §4): which DNS questions a target URI
//! asks, and how the answers are ordered into the addresses to try. Pure:
//! the resolver that asks them is the server's (`server/relay/resolve.rs`).
//!
//! ```text
//! host is an IP address            → that address; the port, else 5060 (5061 for TLS)
//! a port is given                  → A/AAAA of the host, that port               (§4.2)
//! transport= given, no port        → SRV _sip._udp / _sip._tcp / _sips._tcp      (§4.2)
//!                                    none: A/AAAA, the default port
//! neither                          → NAPTR of the host: SIP+D2U, SIP+D2T, SIPS+D2T
//!                                    by order then preference → their SRV names  (§4.1)
//!                                    no NAPTR: SRV for each transport we speak,
//!                                    UDP first; none: A/AAAA over UDP, port 5060
//! SRV answers                      → by priority, then weighted at random within a
//!                                    priority (RFC 2782); each target's A/AAAA
//! ```
//!
//! `sips:` URIs take TLS only (§4.1: a `sips` URI is never downgraded).

use super::call::Transport;

/// The first DNS question a target asks, or where it is when none is
/// needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Question {
    /// The host is an IP address: nothing to ask.
    Literal { port: u16, transport: Transport },
    /// A/AAAA of the host, at this port.
    Address {
        host: String,
        port: u16,
        transport: Transport,
    },
    /// SRV of these names, in order (a transport each); when none answer,
    /// A/AAAA of the host at the transport's default port.
    Services {
        names: Vec<(String, Transport)>,
        host: String,
        fallback: Transport,
    },
    /// NAPTR of the host first; without any, as `Services`.
    Naptr { host: String, secure: bool },
}

/// The default port of a transport (§19.1.2).
pub fn default_port(transport: Transport) -> u16 {
    match transport {
        Transport::Tls => 5061,
        Transport::Udp | Transport::Tcp => 5060,
    }
}

/// The SRV name of a transport for `host` (§4.2, RFC 2782).
pub fn srv_name(host: &str, transport: Transport) -> String {
    match transport {
        Transport::Udp => format!("_sip._udp.{host}"),
        Transport::Tcp => format!("_sip._tcp.{host}"),
        Transport::Tls => format!("_sips._tcp.{host}"),
    }
}

/// What a target URI asks first. `host` is without brackets; `is_ip`
/// when it is an IP address.
pub fn question(
    host: &str,
    is_ip: bool,
    port: Option<u16>,
    transport: Option<Transport>,
    secure: bool,
) -> Question {
    // §4.1: a sips URI goes over TLS whatever it says.
    let transport = if secure {
        Some(Transport::Tls)
    } else {
        transport
    };
    let chosen = transport.unwrap_or(Transport::Udp);
    if is_ip {
        return Question::Literal {
            port: port.unwrap_or_else(|| default_port(chosen)),
            transport: chosen,
        };
    }
    if let Some(port) = port {
        return Question::Address {
            host: host.to_owned(),
            port,
            transport: chosen,
        };
    }
    match transport {
        Some(transport) => Question::Services {
            names: vec![(srv_name(host, transport), transport)],
            host: host.to_owned(),
            fallback: transport,
        },
        None => Question::Naptr {
            host: host.to_owned(),
            secure,
        },
    }
}

/// Without NAPTR records: the SRV names of every transport we speak, UDP
/// first (§4.1), TLS only for a `sips` URI.
pub fn services_without_naptr(host: &str, secure: bool) -> Question {
    let transports: &[Transport] = if secure {
        &[Transport::Tls]
    } else {
        &[Transport::Udp, Transport::Tcp, Transport::Tls]
    };
    Question::Services {
        names: transports.iter().map(|&t| (srv_name(host, t), t)).collect(),
        host: host.to_owned(),
        fallback: if secure {
            Transport::Tls
        } else {
            Transport::Udp
        },
    }
}

/// One NAPTR record as the resolver gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Naptr {
    pub order: u16,
    pub preference: u16,
    pub flags: String,
    pub service: String,
    pub replacement: String,
}

/// The SRV names NAPTR records point to, for the services we speak, best
/// first (§4.1: lowest order, then lowest preference; flag `S`).
pub fn naptr_services(records: &[Naptr], secure: bool) -> Vec<(String, Transport)> {
    let mut usable: Vec<(&Naptr, Transport)> = records
        .iter()
        .filter(|r| r.flags.eq_ignore_ascii_case("s"))
        .filter_map(|r| {
            let transport = match r.service.to_ascii_uppercase().as_str() {
                "SIP+D2U" => Transport::Udp,
                "SIP+D2T" => Transport::Tcp,
                "SIPS+D2T" => Transport::Tls,
                _ => return None,
            };
            (!secure || transport == Transport::Tls).then_some((r, transport))
        })
        .collect();
    usable.sort_by_key(|(r, _)| (r.order, r.preference));
    usable
        .into_iter()
        .map(|(r, t)| (r.replacement.trim_end_matches('.').to_owned(), t))
        .collect()
}

/// One SRV record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Srv {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    pub target: String,
}

/// SRV records in the order to try them (RFC 2782): lowest priority
/// first; within a priority, picked one by one at random in proportion to
/// weight (`random(n)` gives a number in `0..=n`). A target of `.` means
/// the service is not offered there and is dropped.
pub fn order_srv(mut records: Vec<Srv>, mut random: impl FnMut(u32) -> u32) -> Vec<Srv> {
    records.retain(|r| r.target != "." && !r.target.is_empty());
    records.sort_by_key(|r| r.priority);
    let mut ordered = Vec::with_capacity(records.len());
    let mut rest = records.as_slice();
    while let Some(first) = rest.first() {
        let same = rest
            .iter()
            .take_while(|r| r.priority == first.priority)
            .count();
        let (group, after) = rest.split_at(same);
        // Zero weights first, as RFC 2782 asks, so they get a small
        // chance rather than none.
        let mut group: Vec<Srv> = group.to_vec();
        group.sort_by_key(|r| r.weight != 0);
        while !group.is_empty() {
            let total: u32 = group.iter().map(|r| u32::from(r.weight)).sum();
            let pick = random(total);
            let mut running = 0;
            let chosen = group
                .iter()
                .position(|r| {
                    running += u32::from(r.weight);
                    running >= pick
                })
                .unwrap_or(0);
            ordered.push(group.remove(chosen));
        }
        rest = after;
    }
    ordered
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_uri_asks_its_question() {
        assert_eq!(
            question("192.0.2.1", true, None, None, false),
            Question::Literal {
                port: 5060,
                transport: Transport::Udp
            }
        );
        assert_eq!(
            question("192.0.2.1", true, None, Some(Transport::Tls), false),
            Question::Literal {
                port: 5061,
                transport: Transport::Tls
            }
        );
        assert_eq!(
            question(
                "sbc.example",
                false,
                Some(5080),
                Some(Transport::Tcp),
                false
            ),
            Question::Address {
                host: "sbc.example".into(),
                port: 5080,
                transport: Transport::Tcp
            }
        );
        assert_eq!(
            question("sbc.example", false, None, Some(Transport::Tcp), false),
            Question::Services {
                names: vec![("_sip._tcp.sbc.example".into(), Transport::Tcp)],
                host: "sbc.example".into(),
                fallback: Transport::Tcp
            }
        );
        assert_eq!(
            question("carrier.example", false, None, None, false),
            Question::Naptr {
                host: "carrier.example".into(),
                secure: false
            }
        );
        // sips: TLS whatever the transport parameter says.
        assert_eq!(
            question("carrier.example", false, None, Some(Transport::Udp), true),
            Question::Services {
                names: vec![("_sips._tcp.carrier.example".into(), Transport::Tls)],
                host: "carrier.example".into(),
                fallback: Transport::Tls
            }
        );
    }

    #[test]
    fn without_naptr_every_transport_is_asked_udp_first() {
        let Question::Services { names, .. } = services_without_naptr("c.example", false) else {
            panic!("services");
        };
        assert_eq!(
            names,
            [
                ("_sip._udp.c.example".to_owned(), Transport::Udp),
                ("_sip._tcp.c.example".to_owned(), Transport::Tcp),
                ("_sips._tcp.c.example".to_owned(), Transport::Tls),
            ]
        );
    }

    fn naptr(order: u16, preference: u16, service: &str, replacement: &str) -> Naptr {
        Naptr {
            order,
            preference,
            flags: "S".into(),
            service: service.into(),
            replacement: replacement.into(),
        }
    }

    #[test]
    fn naptr_records_are_taken_by_order_then_preference() {
        let records = [
            naptr(20, 10, "SIP+D2U", "_sip._udp.c.example."),
            naptr(10, 20, "SIP+D2T", "_sip._tcp.c.example."),
            naptr(10, 10, "SIPS+D2T", "_sips._tcp.c.example."),
            naptr(5, 10, "E2U+sip", "nope.example."),
        ];
        assert_eq!(
            naptr_services(&records, false),
            [
                ("_sips._tcp.c.example".to_owned(), Transport::Tls),
                ("_sip._tcp.c.example".to_owned(), Transport::Tcp),
                ("_sip._udp.c.example".to_owned(), Transport::Udp),
            ]
        );
        assert_eq!(
            naptr_services(&records, true),
            [("_sips._tcp.c.example".to_owned(), Transport::Tls)]
        );
    }

    fn srv(priority: u16, weight: u16, target: &str) -> Srv {
        Srv {
            priority,
            weight,
            port: 5060,
            target: target.into(),
        }
    }

    #[test]
    fn srv_records_go_by_priority_and_weight() {
        let records = vec![
            srv(20, 0, "backup.example"),
            srv(10, 60, "a.example"),
            srv(10, 40, "b.example"),
            srv(30, 0, "."),
        ];
        let targets = |pick: u32| {
            order_srv(records.clone(), |_| pick)
                .into_iter()
                .map(|r| r.target)
                .collect::<Vec<_>>()
        };
        // A low draw lands on the first weight, a high one on the second.
        assert_eq!(targets(10), ["a.example", "b.example", "backup.example"]);
        assert_eq!(targets(100), ["b.example", "a.example", "backup.example"]);
    }

    proptest::proptest! {
        /// Whatever the records and draws: each usable record once, and
        /// the priorities never go down.
        #[test]
        fn srv_order_keeps_every_record_and_the_priorities(
            records in proptest::collection::vec((0u16..4, 0u16..100), 0..12),
            seed in proptest::prelude::any::<u64>(),
        ) {
            let srvs: Vec<Srv> = records
                .iter()
                .enumerate()
                .map(|(i, &(p, w))| srv(p, w, &format!("t{i}.example")))
                .collect();
            let mut state = seed;
            let ordered = order_srv(srvs.clone(), |n| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1);
                if n == 0 { 0 } else { (state >> 33) as u32 % (n + 1) }
            });
            proptest::prop_assert_eq!(ordered.len(), srvs.len());
            for pair in ordered.windows(2) {
                proptest::prop_assert!(pair[0].priority <= pair[1].priority);
            }
            let mut names: Vec<_> = ordered.iter().map(|r| r.target.clone()).collect();
            names.sort();
            names.dedup();
            proptest::prop_assert_eq!(names.len(), srvs.len());
        }
    }
}
