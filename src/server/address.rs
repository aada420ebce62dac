//! Peer addresses as the trust list and the flood limits see them: an IPv4
//! peer reaching a dual-stack socket shows as `::ffff:a.b.c.d`, and must
//! match the same networks as `a.b.c.d`.

use std::net::IpAddr;

use ipnet::IpNet;

/// The address with an IPv4-mapped IPv6 address turned back into IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whether the peer is in one of `networks`.
pub fn listed(networks: &[IpNet], ip: IpAddr) -> bool {
    let ip = canonical(ip);
    networks.iter().any(|net| net.contains(&ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_ipv4_matches_ipv4_networks() {
        let nets: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        assert!(listed(&nets, "10.1.2.3".parse().unwrap()));
        assert!(listed(&nets, "::ffff:10.1.2.3".parse().unwrap()));
        assert!(listed(&nets, "::1".parse().unwrap()));
        assert!(!listed(&nets, "192.0.2.1".parse().unwrap()));
    }
}
