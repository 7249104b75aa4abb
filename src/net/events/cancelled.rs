//! A future that ends when a call's cancel tokens trigger: how a request in flight on the event
//! loop, or one queued for a permit, learns of its cancel at once.

use std::sync::{Arc, Weak};

use tokio::sync::Notify;

use crate::cancel::{Cancel, Watcher};

/// Ends when any of `cancels` triggers; never when there are none. Its registrations with the
/// tokens end with it.
pub(crate) async fn cancelled(cancels: &[&Arc<Cancel>]) {
    if cancels.is_empty() {
        return std::future::pending().await;
    }
    let bell = Arc::new(Bell(Notify::new()));
    let mut watching = Watching { cancels, keys: Vec::with_capacity(cancels.len()) };
    for cancel in cancels {
        match cancel.watch(Arc::downgrade(&bell) as Weak<dyn Watcher>, 0) {
            Some(key) => watching.keys.push(Some(key)),
            None => return,
        }
    }
    // `notify_one` keeps a wake given before this waits: none is lost.
    bell.0.notified().await;
}

struct Bell(Notify);

impl Watcher for Bell {
    fn cancelled(&self, _token: u64) {
        self.0.notify_one();
    }
}

/// Forgets the registrations with the tokens when the future ends or is dropped.
struct Watching<'a> {
    cancels: &'a [&'a Arc<Cancel>],
    keys: Vec<Option<u64>>,
}

impl Drop for Watching<'_> {
    fn drop(&mut self) {
        for (cancel, key) in self.cancels.iter().zip(&self.keys) {
            if let Some(key) = key {
                cancel.unwatch(*key);
            }
        }
    }
}
