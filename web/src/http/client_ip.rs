//! The client's address: the connection's, or, when the connection comes from a trusted
//! reverse proxy (`trusted_proxies`), the rightmost address of `X-Forwarded-For` that is not a
//! trusted proxy. Addresses further left were written by the client and prove nothing.
//!
//! **Invariant:** the login limits and the audit log's `ip` read the address from here only.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;

use crate::state::AppState;

/// The client's address, as [`client_ip`] finds it.
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub IpAddr);

impl ClientIp {
    /// The address of the request with these `extensions` and `headers`; `None` without a
    /// connection (never in a server).
    pub fn of(extensions: &Extensions, headers: &HeaderMap, state: &AppState) -> Option<IpAddr> {
        extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| client_ip(peer.ip(), headers, &state.trusted_proxies))
    }
}

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Without connection information (not the case in a server) the request counts as
        // coming from the unspecified address, which every limit still applies to.
        Ok(Self(
            Self::of(&parts.extensions, &parts.headers, state)
                .unwrap_or(IpAddr::from([0, 0, 0, 0])),
        ))
    }
}

/// The client behind `peer`, believing `X-Forwarded-For` only from `trusted` proxies.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|network| network.contains(ip));
    let mut client = peer.to_canonical();
    if !is_trusted(&client) {
        return client;
    }
    let forwarded: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect();
    for entry in forwarded.into_iter().rev() {
        // A malformed entry ends the chain: what lies left of it cannot be trusted.
        let Ok(address) = entry.parse::<IpAddr>() else {
            break;
        };
        client = address.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn forwarded(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append("x-forwarded-for", HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_header_is_believed_only_from_a_trusted_proxy() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy = IpAddr::from([10, 0, 0, 5]);
        let stranger = IpAddr::from([192, 0, 2, 9]);
        let headers = forwarded(&["203.0.113.7"]);
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            IpAddr::from([203, 0, 113, 7])
        );
        assert_eq!(client_ip(stranger, &headers, &trusted), stranger);
        assert_eq!(client_ip(proxy, &headers, &[]), proxy);
    }

    #[test]
    fn the_rightmost_untrusted_address_is_the_client() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy = IpAddr::from([10, 0, 0, 5]);
        // The client forged the first address; the second proxy added the real one.
        let headers = forwarded(&["198.51.100.1, 203.0.113.7", "10.0.0.6"]);
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            IpAddr::from([203, 0, 113, 7])
        );
        // Only proxies: the leftmost is the best there is.
        let headers = forwarded(&["10.0.0.7"]);
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            IpAddr::from([10, 0, 0, 7])
        );
        // A malformed entry stops the walk at the last good address.
        let headers = forwarded(&["203.0.113.7, garbage, 10.0.0.6"]);
        assert_eq!(
            client_ip(proxy, &headers, &trusted),
            IpAddr::from([10, 0, 0, 6])
        );
    }
}
