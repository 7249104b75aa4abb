//! What a client's connections carried, counted where the bytes pass the socket: connections
//! opened and closed, and the bytes written and read (TCP payload: HTTP, and TLS's records
//! when the connection is TLS). Relaxed atomics, shared by every channel the client builds,
//! blocking (`tcp.rs`, `transport.rs`) and event loop (`events.rs`) alike.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct Wire {
    opened: AtomicU64,
    closed: AtomicU64,
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
}

impl Wire {
    pub fn count_opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_closed(&self) {
        self.closed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_sent(&self, bytes: usize) {
        self.bytes_sent.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn count_received(&self, bytes: usize) {
        self.bytes_received.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Connections open now: opened and not yet closed (by the server, the pool, or a
    /// setting's change that replaced the pool).
    pub fn open(&self) -> u64 {
        // Closed is read first: a connection closing meanwhile cannot make the count negative.
        let closed = self.closed.load(Ordering::Relaxed);
        self.opened().saturating_sub(closed)
    }

    pub fn bytes_sent(&self) -> u64 {
        self.bytes_sent.load(Ordering::Relaxed)
    }

    pub fn bytes_received(&self) -> u64 {
        self.bytes_received.load(Ordering::Relaxed)
    }
}
