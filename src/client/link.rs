//! What a call's requests go out on: the blocking link (ureq and the client's gate, for the
//! single calls and the engine's threads) or the event loop's (hyper, for the engine on an
//! event loop). The client's rules (admission by the budget and the guard, classification,
//! counters, logs, retries) are written once, as `async` functions generic over the link; the
//! blocking link never waits inside a future, so a blocking call runs them with [`block_now`]
//! (one poll, no executor, no allocation).

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crate::api::error::Error;
use crate::cancel::Cancel;
use crate::net::endpoint::ProxyUrl;
use crate::net::events::{EventChannel, EventPermit};
use crate::net::gate::{Gate, Permit, Refused};
use crate::net::inflight;
use crate::net::transport::{AttemptFailure, Channel, Method};

/// A way to send a call's requests.
pub(crate) trait Link {
    /// A request's right to a connection, given back on drop.
    type Permit;
    /// Why nothing can be sent (a malformed proxy in the environment), reported by every call.
    fn unusable(&self) -> Option<Error>;
    fn request_timeout(&self) -> Duration;
    /// The proxy in use, for messages (its credentials are scrubbed).
    fn proxy(&self) -> Option<&ProxyUrl>;
    /// The most requests in flight at once, for the message of a permit that never came.
    fn max_in_flight(&self) -> u32;
    /// Waits for a permit until `deadline` or a cancel. `bool`: it had to wait.
    async fn permit(&self, deadline: Instant, cancels: &[&Arc<Cancel>]) -> Result<(Self::Permit, bool), Refused>;
    /// One exchange within `timeout`; a cancel fails it at once.
    async fn attempt(
        &self,
        method: Method,
        body: &str,
        timeout: Duration,
        cancels: &[&Arc<Cancel>],
    ) -> Result<(u16, Vec<u8>), AttemptFailure>;
    /// Whether the last attempt opened a new connection; `None`: not known.
    fn opened_connection(&self) -> Option<bool>;
}

/// The blocking link: the client's ureq channel and its gate.
pub(crate) struct Blocking<'a> {
    pub channel: Arc<Result<Channel, Error>>,
    pub gate: &'a Arc<Gate>,
}

impl<'a> Link for Blocking<'a> {
    type Permit = Permit<'a>;

    fn unusable(&self) -> Option<Error> {
        self.channel.as_ref().as_ref().err().cloned()
    }

    fn request_timeout(&self) -> Duration {
        self.channel.as_ref().as_ref().map(|channel| channel.request_timeout).unwrap_or_default()
    }

    fn proxy(&self) -> Option<&ProxyUrl> {
        self.channel.as_ref().as_ref().ok().and_then(|channel| channel.proxy.as_ref())
    }

    fn max_in_flight(&self) -> u32 {
        self.gate.max()
    }

    async fn permit(&self, deadline: Instant, cancels: &[&Arc<Cancel>]) -> Result<(Permit<'a>, bool), Refused> {
        let gate: &'a Arc<Gate> = self.gate;
        let permit = gate.acquire(deadline, cancels)?;
        let queued = permit.queued();
        Ok((permit, queued))
    }

    async fn attempt(
        &self,
        method: Method,
        body: &str,
        timeout: Duration,
        cancels: &[&Arc<Cancel>],
    ) -> Result<(u16, Vec<u8>), AttemptFailure> {
        let Ok(channel) = self.channel.as_ref() else { unreachable!("checked by `unusable` first") };
        let in_flight = inflight::enter(cancels);
        let outcome = channel.attempt(method, body, timeout);
        drop(in_flight);
        outcome
    }

    fn opened_connection(&self) -> Option<bool> {
        Some(crate::net::transport::last_attempt_opened_connection())
    }
}

/// The event loop's link: hyper's client of the engine, with its own permits.
pub(crate) struct Events<'a>(pub &'a EventChannel);

impl Link for Events<'_> {
    type Permit = EventPermit;

    fn unusable(&self) -> Option<Error> {
        None
    }

    fn request_timeout(&self) -> Duration {
        self.0.request_timeout
    }

    fn proxy(&self) -> Option<&ProxyUrl> {
        self.0.proxy.as_ref()
    }

    fn max_in_flight(&self) -> u32 {
        self.0.max_in_flight()
    }

    async fn permit(&self, deadline: Instant, cancels: &[&Arc<Cancel>]) -> Result<(EventPermit, bool), Refused> {
        self.0.permit(deadline, cancels).await
    }

    async fn attempt(
        &self,
        method: Method,
        body: &str,
        timeout: Duration,
        cancels: &[&Arc<Cancel>],
    ) -> Result<(u16, Vec<u8>), AttemptFailure> {
        // Boxed: the exchange's future (hyper's request, the answer's body, the timeout) is
        // most of a poll's; inline, it would size the future of every wait queued for a permit
        // too, for the whole wait. Boxed, only the requests in flight hold it.
        Box::pin(self.0.attempt(method, body, timeout, cancels)).await
    }

    fn opened_connection(&self) -> Option<bool> {
        None
    }
}

/// Runs a future of the blocking link to its end on this thread: it never waits inside the
/// future (it blocks instead), so one poll finishes it.
pub(crate) fn block_now<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        // Only a future that awaits the event loop's link can pend; none is run here.
        Poll::Pending => unreachable!("a blocking call awaited the event loop"),
    }
}
