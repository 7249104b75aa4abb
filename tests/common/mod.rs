//! Shared by the integration tests: an emulator per test, and a client for it.
#![allow(dead_code, unused_imports)]

pub mod servers;

use std::time::Duration;

use capmonster::{Client, Schedule};
pub use capmonster_emulator::{Config, Emulator, Step};

/// A fresh emulator on a free loopback port.
pub fn emulator() -> Emulator {
    Emulator::start(Config::default()).expect("the emulator starts")
}

/// A client for `emulator`. Each test passes its own key: the request budget is process-wide,
/// per (key, task), and tests run in parallel.
pub fn client(emulator: &Emulator, key: &str) -> Client {
    let client = Client::new(key).expect("valid key");
    client.set_base_url(&emulator.url()).expect("valid emulator URL");
    client.set_proxy(None).expect("direct");
    client
}

/// A schedule that polls quickly, for tests.
pub fn fast_schedule() -> Schedule {
    Schedule {
        first_delay: Duration::ZERO,
        interval: Duration::from_millis(10),
        timeout: Duration::from_secs(10),
        max_requests: 120,
    }
}
