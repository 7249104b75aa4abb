//! Name resolution for the connection pool.
//!
//! ureq resolves the host before every request, pooled connection or not, and with a timeout
//! set (always, here) its default resolver starts a thread per lookup, even for an IP literal.
//! This one answers IP literals (the emulator, local proxies) directly and caches names for
//! [`NAME_TTL`], as curl does, so a busy client does not resolve the service per request.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

/// How long a resolved name is reused (curl's default DNS cache timeout).
pub const NAME_TTL: Duration = Duration::from_secs(60);
/// The most names cached per client; a full cache is emptied (clients talk to one or two hosts).
pub const MAX_CACHED_NAMES: usize = 64;

#[derive(Debug, Default)]
pub(crate) struct CachingResolver {
    names: DefaultResolver,
    cache: Mutex<HashMap<(String, u16), (ResolvedSocketAddrs, Instant)>>,
}

impl Resolver for CachingResolver {
    fn resolve(&self, uri: &Uri, config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let Some(host) = uri.host() else { return self.names.resolve(uri, config, timeout) };
        let Some(port) = uri.port_u16().or_else(|| match uri.scheme_str() {
            Some("https") => Some(443),
            Some("http") => Some(80),
            _ => None,
        }) else {
            return self.names.resolve(uri, config, timeout);
        };
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        let key = (bare.to_ascii_lowercase(), port);
        let now = Instant::now();
        if let Some((addrs, expires)) = self.cache.lock().unwrap_or_else(PoisonError::into_inner).get(&key) {
            if *expires > now {
                return Ok(addrs.clone());
            }
        }
        // Resolved outside the lock: a slow lookup must not hold up other threads' requests.
        let addrs = self.names.resolve(uri, config, timeout)?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED_NAMES {
            cache.clear();
        }
        cache.insert(key, (addrs.clone(), now + NAME_TTL));
        Ok(addrs)
    }
}
