//! Shared by the integration tests: an emulator per test, and a client for it.
#![allow(dead_code, unused_imports)]

pub mod servers;

use std::time::Duration;

use capmonster::{Client, Schedule};
pub use capmonster_emulator::{Config, Emulator, Step};
use serde_json::{json, Value};

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

/// A ready answer from the service's documentation: its page, the answer as the body to
/// serve (the docs' own field order and extras, `"status":"ready"` added where the docs left
/// it out), and its solution.
pub struct DocsExample {
    pub page: String,
    pub body: String,
    pub solution: Value,
}

/// Every ready example of `tests/fixtures/capmonster-docs-examples.json`.
pub fn docs_ready_examples() -> Vec<DocsExample> {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/capmonster-docs-examples.json"))
            .expect("tests/fixtures/capmonster-docs-examples.json");
    let fixtures: Value = serde_json::from_str(&text).expect("the fixtures are JSON");
    let mut examples = Vec::new();
    for page in fixtures["pages"].as_array().expect("pages") {
        for example in page["responses"].as_array().expect("responses") {
            let Some(solution) = example.get("solution") else { continue };
            let mut body = example.clone();
            body.as_object_mut().expect("an object").entry("status").or_insert(json!("ready"));
            examples.push(DocsExample {
                page: page["page"].as_str().unwrap_or("?").to_owned(),
                body: body.to_string(),
                solution: solution.clone(),
            });
        }
    }
    examples
}
