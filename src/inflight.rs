//! The cancels of the request running on this thread, for the transport to reach.
//!
//! ureq drives a request on the calling thread and picks its connection (pooled or new) deep
//! inside; only the transport sees the socket. So the client states, for the length of one
//! attempt, which tokens may cancel it ([`enter`]), and the TCP transport registers each socket
//! it touches with them ([`watch_socket`]). A trigger then shuts the socket down: the blocked
//! poll returns, the request fails, and ureq drops the connection instead of pooling it.

use std::cell::RefCell;
use std::net::TcpStream;
use std::sync::{Arc, Weak};

use crate::cancel::{Cancel, Watcher};

/// Sockets one attempt may touch: a stale pooled one and its replacement, with room to spare.
const MAX_SOCKETS_PER_ATTEMPT: usize = 4;

struct Scope {
    cancels: Vec<Arc<Cancel>>,
    /// (socket identity, token index, registration key).
    watches: Vec<(*const TcpStream, usize, u64)>,
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// While alive, sockets used on this thread are interrupted by the given tokens.
pub(crate) struct InFlight {
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Starts an attempt that `cancels` may interrupt; `None` (and no cost) when there are none.
pub(crate) fn enter(cancels: &[&Arc<Cancel>]) -> Option<InFlight> {
    if cancels.is_empty() {
        return None;
    }
    let scope = Scope { cancels: cancels.iter().map(|c| Arc::clone(c)).collect(), watches: Vec::new() };
    SCOPE.with(|slot| *slot.borrow_mut() = Some(scope));
    Some(InFlight { _not_send: std::marker::PhantomData })
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(scope) = SCOPE.with(|slot| slot.borrow_mut().take()) {
            for (_, index, key) in scope.watches {
                scope.cancels[index].unwatch(key);
            }
        }
    }
}

/// Called by the transport before each operation on `socket`: registers it once per attempt
/// with the attempt's tokens. A token that has already triggered shuts the socket down now.
pub(crate) fn watch_socket(socket: &Arc<TcpStream>) {
    SCOPE.with(|slot| {
        let mut slot = slot.borrow_mut();
        let Some(scope) = slot.as_mut() else { return };
        let identity = Arc::as_ptr(socket);
        if scope.watches.iter().any(|(seen, _, _)| *seen == identity)
            || scope.watches.len() >= MAX_SOCKETS_PER_ATTEMPT * scope.cancels.len()
        {
            return;
        }
        for (index, cancel) in scope.cancels.iter().enumerate() {
            match cancel.watch(Arc::downgrade(socket) as Weak<dyn Watcher>, 0) {
                Some(key) => scope.watches.push((identity, index, key)),
                None => socket.cancelled(0),
            }
        }
    });
}
