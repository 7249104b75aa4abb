//! Name resolution for the connection pool.
//!
//! ureq resolves the host before every request, pooled connection or not, and with a timeout
//! set (always, here) its default resolver starts a thread per lookup, even for an IP literal,
//! and leaves it behind when the timeout passes. This one:
//! - answers IP literals (the emulator, local proxies) directly;
//! - caches names for [`NAME_TTL`], as curl does, so a busy client does not resolve the
//!   service per request;
//! - runs one lookup per name at a time, on a thread of its own, that every caller needing the
//!   name shares (so lookup threads are bounded by [`MAX_LOOKUPS`], not by callers);
//! - waits for it within the request's deadline and the attempt's cancels (`inflight`): the
//!   system's resolver cannot be interrupted, but a cancel no longer waits for it.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use crate::cancel::Watcher;

/// How long a resolved name is reused (curl's default DNS cache timeout).
pub const NAME_TTL: Duration = Duration::from_secs(60);
/// The most names cached per client; a full cache is emptied (clients talk to one or two hosts).
pub const MAX_CACHED_NAMES: usize = 64;
/// The most lookups (distinct names) running at once per client; beyond, a call fails at once.
pub const MAX_LOOKUPS: usize = 16;

type Key = (String, u16);

/// One lookup's outcome, shared by all who wait for it: the addresses, or the error's kind and
/// text (io::Error is not Clone).
type Outcome = Result<ResolvedSocketAddrs, (io::ErrorKind, String)>;

#[derive(Default)]
struct Lookup {
    outcome: Mutex<Option<Outcome>>,
    done: Condvar,
}

impl Lookup {
    fn lock(&self) -> MutexGuard<'_, Option<Outcome>> {
        self.outcome.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A waiter's cancel wakes it; the lookup itself runs on.
impl Watcher for Lookup {
    fn cancelled(&self, _token: u64) {
        let _outcome = self.lock();
        self.done.notify_all();
    }
}

#[derive(Default)]
struct Names {
    cache: HashMap<Key, (ResolvedSocketAddrs, Instant)>,
    running: HashMap<Key, Arc<Lookup>>,
}

#[derive(Default)]
pub(crate) struct CachingResolver {
    names: Arc<Mutex<Names>>,
}

impl std::fmt::Debug for CachingResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingResolver").finish_non_exhaustive()
    }
}

fn lock(names: &Mutex<Names>) -> MutexGuard<'_, Names> {
    // Nothing panics under this lock; a poisoned table is still consistent.
    names.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Resolver for CachingResolver {
    fn resolve(&self, uri: &Uri, _config: &Config, timeout: NextTimeout) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().ok_or(ureq::Error::HostNotFound)?;
        let port = uri
            .port_u16()
            .or_else(|| match uri.scheme_str() {
                Some("https") => Some(443),
                Some("http") => Some(80),
                _ => None,
            })
            .ok_or(ureq::Error::HostNotFound)?;
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if let Ok(ip) = bare.parse::<IpAddr>() {
            let mut addrs = self.empty();
            addrs.push(SocketAddr::new(ip, port));
            return Ok(addrs);
        }
        let deadline = if timeout.after.is_not_happening() { None } else { Instant::now().checked_add(*timeout.after) };
        let lookup = self.lookup((bare.to_ascii_lowercase(), port), deadline)?;
        let outcome = match lookup {
            Found::Cached(addrs) => return Ok(addrs),
            Found::Running(lookup) => wait_for(&lookup, deadline),
        };
        match outcome {
            Some(Ok(addrs)) => Ok(addrs),
            Some(Err((kind, text))) => Err(io::Error::new(kind, text).into()),
            None if crate::net::inflight::cancelled() => Err(crate::net::inflight::cancelled_error()),
            None => Err(ureq::Error::Timeout(timeout.reason)),
        }
    }
}

// Short-lived (returned once, never stored): boxing the addresses would only cost an allocation.
#[allow(clippy::large_enum_variant)]
enum Found {
    Cached(ResolvedSocketAddrs),
    Running(Arc<Lookup>),
}

impl CachingResolver {
    /// The cached addresses, or the lookup running for `key` (started if none is).
    fn lookup(&self, key: Key, deadline: Option<Instant>) -> Result<Found, ureq::Error> {
        let now = Instant::now();
        let mut names = lock(&self.names);
        if let Some((addrs, expires)) = names.cache.get(&key) {
            if *expires > now {
                return Ok(Found::Cached(addrs.clone()));
            }
        }
        if let Some(lookup) = names.running.get(&key) {
            return Ok(Found::Running(Arc::clone(lookup)));
        }
        if names.running.len() >= MAX_LOOKUPS {
            let text = format!("{MAX_LOOKUPS} name lookups are already running; {:?} was not looked up", key.0);
            return Err(io::Error::new(io::ErrorKind::WouldBlock, text).into());
        }
        if deadline.is_some_and(|deadline| deadline <= now) {
            return Err(ureq::Error::Timeout(ureq::Timeout::Resolve));
        }
        let lookup = Arc::new(Lookup::default());
        let (names_shared, running, started_key) = (Arc::clone(&self.names), Arc::clone(&lookup), key.clone());
        std::thread::Builder::new()
            .name("capmonster-dns".to_owned())
            .spawn(move || resolve_now(&names_shared, &running, started_key))
            .map_err(|error| io::Error::new(error.kind(), format!("could not start a name lookup: {error}")))?;
        names.running.insert(key, Arc::clone(&lookup));
        Ok(Found::Running(lookup))
    }
}

/// The lookup thread: asks the system, caches a success, and wakes everyone waiting.
fn resolve_now(names: &Mutex<Names>, lookup: &Lookup, key: Key) {
    let outcome = match (key.0.as_str(), key.1).to_socket_addrs() {
        Ok(found) => {
            let mut addrs = ResolvedSocketAddrs::from_fn(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
            for addr in found {
                if addrs.try_push(addr).is_err() {
                    break;
                }
            }
            if addrs.is_empty() {
                Err((io::ErrorKind::NotFound, format!("the name {:?} has no address", key.0)))
            } else {
                Ok(addrs)
            }
        }
        Err(error) => Err((error.kind(), format!("the name lookup of {:?} failed: {error}", key.0))),
    };
    {
        let mut names = lock(names);
        names.running.remove(&key);
        if let Ok(addrs) = &outcome {
            if names.cache.len() >= MAX_CACHED_NAMES {
                names.cache.clear();
            }
            names.cache.insert(key, (addrs.clone(), Instant::now() + NAME_TTL));
        }
    }
    *lookup.lock() = Some(outcome);
    lookup.done.notify_all();
}

/// Waits for `lookup` until it is done (its outcome), the deadline passes or a cancel of the
/// attempt triggers (`None` for both).
fn wait_for(lookup: &Arc<Lookup>, deadline: Option<Instant>) -> Option<Outcome> {
    crate::net::inflight::while_watched(Arc::downgrade(lookup) as Weak<dyn Watcher>, || {
        let mut outcome = lookup.lock();
        // Bounded by the deadline and the cancels: each turn returns or sleeps until one.
        loop {
            if let Some(outcome) = outcome.as_ref() {
                return Some(outcome.clone());
            }
            if crate::net::inflight::cancelled() {
                return None;
            }
            outcome = match deadline {
                None => lookup.done.wait(outcome).unwrap_or_else(PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return None;
                    }
                    lookup.done.wait_timeout(outcome, left).unwrap_or_else(PoisonError::into_inner).0
                }
            };
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cancel::Cancel;

    fn resolver_and_uri(host: &str) -> (CachingResolver, Uri, Config) {
        let uri: Uri = format!("http://{host}:8080/x").parse().unwrap();
        (CachingResolver::default(), uri, Config::default())
    }

    fn within(ms: u64) -> NextTimeout {
        NextTimeout { after: Duration::from_millis(ms).into(), ..NextTimeout::default() }
    }

    #[test]
    fn literals_are_answered_and_names_cached() {
        let (resolver, uri, config) = resolver_and_uri("127.0.0.1");
        assert_eq!(resolver.resolve(&uri, &config, within(1000)).unwrap()[0], "127.0.0.1:8080".parse().unwrap());
        let (resolver, uri, config) = resolver_and_uri("localhost");
        let first = resolver.resolve(&uri, &config, within(5000)).unwrap();
        assert!(first.iter().all(|addr| addr.ip().is_loopback() && addr.port() == 8080), "{first:?}");
        assert_eq!(lock(&resolver.names).cache.len(), 1);
        assert!(lock(&resolver.names).running.is_empty());
        assert_eq!(resolver.resolve(&uri, &config, within(5000)).unwrap().len(), first.len());
    }

    #[test]
    fn a_failed_lookup_names_the_host() {
        let (resolver, uri, config) = resolver_and_uri("no-such-host.invalid");
        let error = resolver.resolve(&uri, &config, within(10_000)).unwrap_err();
        assert!(error.to_string().contains("no-such-host.invalid"), "{error}");
        assert!(lock(&resolver.names).cache.is_empty(), "failures are not cached");
    }

    /// A lookup that hangs (here: one that is marked running and never finishes) holds up no
    /// caller beyond its deadline or its cancel.
    #[test]
    fn a_hung_lookup_ends_at_the_deadline_or_the_cancel() {
        let (resolver, uri, config) = resolver_and_uri("hung.example");
        lock(&resolver.names).running.insert(("hung.example".to_owned(), 8080), Arc::new(Lookup::default()));
        let start = Instant::now();
        let error = resolver.resolve(&uri, &config, within(100)).unwrap_err();
        assert!(matches!(error, ureq::Error::Timeout(_)), "{error}");
        assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());

        let cancel = Arc::new(Cancel::new());
        let trigger = {
            let cancel = Arc::clone(&cancel);
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(100));
                cancel.trigger();
            })
        };
        let start = Instant::now();
        let scope = crate::net::inflight::enter(&[&cancel]);
        let error = resolver.resolve(&uri, &config, within(30_000)).unwrap_err();
        drop(scope);
        trigger.join().unwrap();
        assert!(error.to_string().contains("cancelled"), "{error}");
        assert!(start.elapsed() < Duration::from_secs(5), "{:?}", start.elapsed());
        assert_eq!(cancel.watching(), 0, "the wait forgot its registration");
    }

    #[test]
    fn lookups_at_once_are_bounded() {
        let (resolver, uri, config) = resolver_and_uri("one-too-many.example");
        for n in 0..MAX_LOOKUPS {
            lock(&resolver.names).running.insert((format!("host-{n}.example"), 80), Arc::new(Lookup::default()));
        }
        let error = resolver.resolve(&uri, &config, within(1000)).unwrap_err();
        assert!(error.to_string().contains("name lookups are already running"), "{error}");
    }
}
