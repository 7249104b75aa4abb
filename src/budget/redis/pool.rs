//! The process's connections to Redis: at most [`MAX_CONNECTIONS`], made on demand, with
//! [`CONNECT_TIMEOUT`] for connecting and [`TIMEOUT`] for each read and write, so that a dead
//! or stalled Redis costs a call at most a few hundred milliseconds, never a hang.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use redis::{Client, Connection, ConnectionLike};

/// Most connections a process keeps to Redis (each count is one short script: a thread waits
/// for a connection only while [`MAX_CONNECTIONS`] others are counting).
pub const MAX_CONNECTIONS: usize = 4;
/// The time bound of connecting (TCP, TLS, `AUTH`, `SELECT`), of each read and each write, and
/// of waiting for a free connection: short beside a request to the service, long beside a
/// count on a loopback or LAN Redis (about 50 µs).
pub const TIMEOUT: Duration = Duration::from_millis(250);
/// The time bound of making a connection: TCP, the TLS handshake, `AUTH`, `SELECT` and the
/// client's name, several round trips (the TLS test of `tests/redis_store.rs`, a debug build on
/// a loaded machine, once ran out of 250 ms).
pub const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// Why an operation on Redis did not happen.
pub(crate) enum Failure {
    /// Redis failed or did not answer in time (the store then falls back, and says so).
    Redis(redis::RedisError),
    /// Every connection stayed busy for [`TIMEOUT`], or a stop kept changing under its
    /// `WATCH`: Redis answers, this one operation falls back.
    Busy,
}

impl From<redis::RedisError> for Failure {
    fn from(error: redis::RedisError) -> Self {
        Failure::Redis(error)
    }
}

pub(crate) struct Pool {
    client: Client,
    idle: Mutex<Idle>,
    freed: Condvar,
}

struct Idle {
    connections: Vec<Connection>,
    /// Connections made and not dropped, idle or in use (at most [`MAX_CONNECTIONS`]).
    open: usize,
    /// The process the connections were made in: a forked child makes its own (sharing the
    /// parent's sockets would mix their replies).
    pid: u32,
}

impl Pool {
    pub fn new(client: Client) -> Pool {
        Pool {
            client,
            idle: Mutex::new(Idle { connections: Vec::new(), open: 0, pid: std::process::id() }),
            freed: Condvar::new(),
        }
    }

    /// Runs `op` on a connection. A connection whose operation failed is dropped (a reply may
    /// be left on it); the next operation connects again: that is the reconnect after an outage.
    pub fn with<T>(&self, op: impl FnOnce(&mut Connection) -> Result<T, Failure>) -> Result<T, Failure> {
        let mut connection = self.checkout()?;
        let result = op(&mut connection);
        self.checkin(connection, result.is_ok());
        result
    }

    fn lock(&self) -> MutexGuard<'_, Idle> {
        // A poisoned lock only means a thread panicked while holding it: the list is whole.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn checkout(&self) -> Result<Connection, Failure> {
        let deadline = Instant::now() + TIMEOUT;
        let mut idle = self.lock();
        let pid = std::process::id();
        if idle.pid != pid {
            // A forked child: the parent's connections are the parent's.
            std::mem::take(&mut idle.connections).into_iter().for_each(std::mem::forget);
            (idle.open, idle.pid) = (0, pid);
        }
        loop {
            if let Some(connection) = idle.connections.pop() {
                return Ok(connection);
            }
            if idle.open < MAX_CONNECTIONS {
                idle.open += 1;
                drop(idle);
                return self.connect().inspect_err(|_| {
                    self.lock().open -= 1;
                    self.freed.notify_one();
                });
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::Busy);
            }
            idle = self.freed.wait_timeout(idle, left).unwrap_or_else(PoisonError::into_inner).0;
        }
    }

    fn connect(&self) -> Result<Connection, Failure> {
        let connection = self.client.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        connection.set_read_timeout(Some(TIMEOUT))?;
        connection.set_write_timeout(Some(TIMEOUT))?;
        Ok(connection)
    }

    fn checkin(&self, connection: Connection, keep: bool) {
        let mut idle = self.lock();
        if idle.pid != std::process::id() {
            // Made before a fork by the parent's thread: not this process's to count.
            std::mem::forget(connection);
            return;
        }
        if keep && connection.is_open() {
            idle.connections.push(connection);
        } else {
            idle.open -= 1;
        }
        drop(idle);
        self.freed.notify_one();
    }
}
