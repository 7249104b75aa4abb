//! A request leaves in one write: ureq writes the head and the body separately, and the
//! library holds them back until it waits for the answer (transport.rs, CoalescedWrites). Two
//! writes cost a TCP segment more per call, which the benchmark showed costing as much as all
//! the rest of a call. Counted by the kernel (/proc/net/snmp), so this test binary holds a single
//! test that sends (tests/common's budget check sends nothing): nothing else of this process
//! sends while it counts.

mod common;

use common::*;

/// TCP segments sent by this machine so far (loopback counts both sides).
fn tcp_segments_sent() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").expect("Linux /proc/net/snmp");
    let mut tcp = snmp.lines().filter(|line| line.starts_with("Tcp:"));
    let (names, values) = (tcp.next().unwrap(), tcp.next().unwrap());
    let column = names.split_whitespace().position(|name| name == "OutSegs").expect("OutSegs");
    values.split_whitespace().nth(column).unwrap().parse().unwrap()
}

#[test]
fn a_request_and_its_answer_take_about_two_segments() {
    let emulator = emulator();
    let client = client(&emulator, "segments");
    assert!(client.get_balance().result.is_ok()); // the connection is open and warm
    let calls = 200;
    let before = tcp_segments_sent();
    for _ in 0..calls {
        assert!(client.get_balance().result.is_ok());
    }
    let per_call = (tcp_segments_sent() - before) as f64 / calls as f64;
    // One segment for the request, one for the answer (ACKs ride along); a request in two
    // writes makes about 3 or more.
    assert!(per_call < 2.6, "{per_call:.2} TCP segments per call");
}
