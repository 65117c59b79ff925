//! The address other devices on the LAN reach this server at.

use std::net::{IpAddr, Ipv4Addr, UdpSocket};

/// The URL a phone on the same network would use, and whether it is reachable from
/// other devices at all (`false` when the server listens on loopback only).
///
/// A wildcard bind (`0.0.0.0`, `::`) is answered with the address of the interface the
/// system would route a private-network packet through; finding it connects a UDP
/// socket, which sends nothing.
pub fn lan_url(host: &str, port: u16) -> (String, bool) {
    let url = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}"),
        v4 => format!("http://{v4}:{port}"),
    };
    match host.parse::<IpAddr>() {
        Ok(ip) if ip.is_loopback() => (url(ip), false),
        Ok(ip) if !ip.is_unspecified() => (url(ip), true),
        Ok(_) => match routed_ipv4() {
            Some(ip) => (url(IpAddr::V4(ip)), true),
            None => (url(IpAddr::V4(Ipv4Addr::LOCALHOST)), false),
        },
        // `localhost` or a name: loopback unless the name says otherwise.
        Err(_) => (format!("http://{host}:{port}"), host != "localhost"),
    }
}

/// The local IPv4 address a packet to a private network would leave from, if any
/// interface other than loopback has a route.
fn routed_ipv4() -> Option<Ipv4Addr> {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    s.connect((Ipv4Addr::new(10, 254, 254, 254), 9)).ok()?;
    match s.local_addr().ok()?.ip() {
        IpAddr::V4(v4) if !v4.is_loopback() && !v4.is_unspecified() => Some(v4),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::lan_url;

    #[test]
    fn loopback_binds_are_not_reachable_from_the_lan() {
        assert_eq!(
            lan_url("127.0.0.1", 3333),
            ("http://127.0.0.1:3333".into(), false)
        );
        assert_eq!(lan_url("::1", 3333), ("http://[::1]:3333".into(), false));
        assert_eq!(
            lan_url("192.168.1.20", 80),
            ("http://192.168.1.20:80".into(), true)
        );
        assert!(!lan_url("localhost", 1).1);
        let (u, _) = lan_url("0.0.0.0", 3333);
        assert!(u.starts_with("http://") && u.ends_with(":3333"), "{u}");
    }
}
