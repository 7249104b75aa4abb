//! Cancels that reach a request in flight, whatever carries it (plain TCP, SOCKS, a CONNECT
//! tunnel, TLS on top).
//!
//! ureq drives a request on the calling thread and picks its connection (pooled or new) deep
//! inside. So the client states, for the length of one attempt, which tokens may cancel it
//! ([`enter`]), and [`Interruptible`], wrapped around the whole connector chain, claims each
//! connection the attempt touches for it. Every base transport registers its socket's
//! shutdown handle as ureq asks; the wrapper catches that registration, so a trigger shuts
//! the socket down: the blocked poll returns, the request fails, and ureq drops the
//! connection instead of pooling it.
//!
//! A connection is shut down only by a cancel of the attempt that owns it now. A cancel that
//! fires late, after its attempt handed the connection back to the pool, finds another owner
//! (or none) and leaves it alone: it never breaks someone else's request.

use std::cell::RefCell;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, ShutdownHandle, Transport};

use crate::cancel::{Cancel, Watcher};

/// Connections one attempt may hold claims on at once: the one in use, a CONNECT tunnel's
/// inner connection, a stale pooled one on its way out, with room to spare. Claims of closed
/// connections are dropped first when the table is full.
const MAX_CLAIMS_PER_ATTEMPT: usize = 8;

/// Attempt ids; 0 means "no owner".
static NEXT_ATTEMPT: AtomicU64 = AtomicU64::new(1);

struct Scope {
    attempt: u64,
    cancels: Vec<Arc<Cancel>>,
    /// (the connection's claim, token index, registration key).
    watches: Vec<(Arc<Claim>, usize, u64)>,
}

thread_local! {
    static SCOPE: RefCell<Option<Scope>> = const { RefCell::new(None) };
}

/// While alive, connections used on this thread are interrupted by the given tokens.
pub(crate) struct InFlight {
    _not_send: std::marker::PhantomData<*const ()>,
}

/// Starts an attempt that `cancels` may interrupt; `None` (and no cost) when there are none.
pub(crate) fn enter(cancels: &[&Arc<Cancel>]) -> Option<InFlight> {
    if cancels.is_empty() {
        return None;
    }
    let scope = Scope {
        attempt: NEXT_ATTEMPT.fetch_add(1, Ordering::Relaxed),
        cancels: cancels.iter().map(|c| Arc::clone(c)).collect(),
        watches: Vec::new(),
    };
    SCOPE.with(|slot| *slot.borrow_mut() = Some(scope));
    Some(InFlight { _not_send: std::marker::PhantomData })
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(scope) = SCOPE.with(|slot| slot.borrow_mut().take()) {
            for (claim, index, key) in scope.watches {
                scope.cancels[index].unwatch(key);
                claim.release(scope.attempt);
            }
        }
    }
}

/// Who may shut a connection down: its shutdown handle and the attempt that owns it now.
#[derive(Default)]
pub(crate) struct Claim {
    state: Mutex<ClaimState>,
}

#[derive(Default)]
struct ClaimState {
    handle: Option<Weak<dyn ShutdownHandle>>,
    /// The attempt using the connection; 0 while it is idle or used without cancels.
    owner: u64,
}

impl Claim {
    fn lock(&self) -> MutexGuard<'_, ClaimState> {
        // Nothing panics under this lock; a poisoned one still holds valid state.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives up ownership, unless another attempt already took it.
    fn release(&self, attempt: u64) {
        let mut state = self.lock();
        if state.owner == attempt {
            state.owner = 0;
        }
    }

    fn is_closed(&self) -> bool {
        self.lock().handle.as_ref().is_some_and(|handle| handle.strong_count() == 0)
    }
}

impl Watcher for Claim {
    fn cancelled(&self, attempt: u64) {
        // Under the lock, so that ownership cannot pass to another attempt in between.
        let state = self.lock();
        if state.owner == attempt {
            if let Some(handle) = state.handle.as_ref().and_then(Weak::upgrade) {
                handle.shutdown();
            }
        }
    }
}

/// Claims `claim`'s connection for the attempt running on this thread, if it has cancels:
/// registers it with them once. An error when one has already triggered: the operation that
/// was about to start must not.
fn claim(claim: &Arc<Claim>) -> Result<(), ureq::Error> {
    SCOPE.with(|slot| {
        let mut slot = slot.borrow_mut();
        // Used without cancels: nothing to do, the connection is already ownerless (a new one
        // starts so, and `is_open` clears the owner whenever ureq takes one from the pool).
        let Some(scope) = slot.as_mut() else { return Ok(()) };
        claim.lock().owner = scope.attempt;
        if scope.watches.iter().any(|(seen, _, _)| Arc::ptr_eq(seen, claim)) {
            return Ok(());
        }
        if scope.watches.len() >= MAX_CLAIMS_PER_ATTEMPT * scope.cancels.len() {
            let cancels = &scope.cancels;
            scope.watches.retain(|(seen, index, key)| {
                let keep = !seen.is_closed();
                if !keep {
                    cancels[*index].unwatch(*key);
                }
                keep
            });
        }
        if scope.watches.len() >= MAX_CLAIMS_PER_ATTEMPT * scope.cancels.len() {
            // ureq uses one connection per attempt, so this never happens; if it did, the
            // request would only lose its prompt cancel, not its deadline.
            return Ok(());
        }
        for (index, cancel) in scope.cancels.iter().enumerate() {
            match cancel.watch(Arc::downgrade(claim) as Weak<dyn Watcher>, scope.attempt) {
                Some(key) => scope.watches.push((Arc::clone(claim), index, key)),
                None => return Err(cancelled_error()),
            }
        }
        Ok(())
    })
}

/// What an operation stopped by a cancel fails with (the client reports CM_ERR_CANCELLED).
pub(crate) fn cancelled_error() -> ureq::Error {
    io::Error::new(io::ErrorKind::Interrupted, "cancelled").into()
}

/// Wraps a connector chain so that every connection it makes is claimed by the attempts
/// that use it (see the module docs).
#[derive(Debug)]
pub(crate) struct Interruptible<C>(pub C);

impl<C: Connector<()>> Connector<()> for Interruptible<C> {
    type Out = Claimed<C::Out>;

    fn connect(&self, details: &ConnectionDetails, chained: Option<()>) -> Result<Option<Self::Out>, ureq::Error> {
        let connection = Arc::new(Claim::default());
        let register_shutdown = {
            let (connection, upstream) = (Arc::clone(&connection), Arc::clone(&details.register_shutdown));
            Arc::new(move |handle: Weak<dyn ShutdownHandle>| {
                upstream(Weak::clone(&handle))?;
                connection.lock().handle = Some(handle);
                // Claimed before the connect (and any proxy or TLS handshake) goes on.
                claim(&connection)
            })
        };
        let details = ConnectionDetails {
            uri: details.uri,
            addrs: details.addrs.clone(),
            config: details.config,
            request_level: details.request_level,
            resolver: details.resolver,
            now: details.now,
            timeout: details.timeout,
            current_time: Arc::clone(&details.current_time),
            run_connector: Arc::clone(&details.run_connector),
            register_shutdown,
        };
        let transport = self.0.connect(&details, chained)?;
        Ok(transport.map(|inner| Claimed { inner, claim: connection }))
    }
}

/// A connection that each operation claims for the attempt running it.
pub(crate) struct Claimed<T> {
    inner: T,
    claim: Arc<Claim>,
}

impl<T: fmt::Debug> fmt::Debug for Claimed<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T: Transport> Transport for Claimed<T> {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        claim(&self.claim)?;
        self.inner.transmit_output(amount, timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        claim(&self.claim)?;
        self.inner.await_input(timeout)
    }

    /// ureq asks this when it takes a connection from the pool and when it gives one back:
    /// either way the connection is between owners now.
    fn is_open(&mut self) -> bool {
        self.claim.lock().owner = 0;
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

/// Whether a cancel of the attempt running on this thread has triggered.
pub(crate) fn cancelled() -> bool {
    SCOPE.with(|slot| slot.borrow().as_ref().is_some_and(|scope| scope.cancels.iter().any(|c| c.is_triggered())))
}

/// Runs `wait` with `watcher` told when a cancel of the attempt on this thread triggers, for
/// waits that are not on a socket (a name lookup). `wait` checks [`cancelled`] itself.
pub(crate) fn while_watched<R>(watcher: Weak<dyn Watcher>, wait: impl FnOnce() -> R) -> R {
    let cancels = SCOPE.with(|slot| slot.borrow().as_ref().map(|scope| scope.cancels.clone()).unwrap_or_default());
    let keys: Vec<Option<u64>> = cancels.iter().map(|cancel| cancel.watch(Weak::clone(&watcher), 0)).collect();
    let result = wait();
    for (cancel, key) in cancels.iter().zip(keys) {
        if let Some(key) = key {
            cancel.unwatch(key);
        }
    }
    result
}
