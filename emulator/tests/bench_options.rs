//! The options for benchmarks: a delay before every API answer, send-time stamps on ready
//! answers, and many tasks at once with spread readiness (`POST /_emulator/tasks`).

mod common;

use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use capmonster_emulator::{Config, Emulator, Step, READY_STAMP_FIELD, STAMP_FIELD};
use common::{post, Conn};
use serde_json::{json, Value};

fn unix_micros() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros()
}

fn poll(port: u16, task_id: i64) -> Value {
    post(port, "/getTaskResult", &json!({"clientKey": "k", "taskId": task_id}).to_string()).json()
}

/// The stamp of a ready answer as a number, checking its form.
fn stamp_of(answer: &Value) -> u128 {
    let text = answer["solution"][STAMP_FIELD].as_str().unwrap_or_else(|| panic!("no stamp in {answer}"));
    assert_eq!(text.len(), 20, "{text}");
    assert!(text.bytes().all(|b| b.is_ascii_digit()), "{text}");
    text.parse().unwrap()
}

#[test]
fn every_api_answer_waits_the_answer_delay_and_control_answers_do_not() {
    let delay = Duration::from_millis(300);
    let em = Emulator::start(Config { answer_delay: delay, solve_after: Duration::ZERO, ..Config::default() }).unwrap();
    let port = em.port();
    let id = em.add_task("ImageToTextTask");
    for (path, body) in [
        ("/getTaskResult", json!({"clientKey": "k", "taskId": id})),
        ("/getBalance", json!({"clientKey": "k"})),
        ("/createTask", json!({"clientKey": "k", "task": {"type": "TurnstileTask"}})),
        ("/getTaskResult", json!({"clientKey": "", "taskId": id})),
    ] {
        let started = Instant::now();
        let resp = post(port, path, &body.to_string());
        assert_eq!(resp.status, 200);
        assert!(started.elapsed() >= delay, "{path}: {:?}", started.elapsed());
    }
    // Added to a scripted step's own delay.
    em.script_task(9, vec![Step::processing().delay(200)]);
    let started = Instant::now();
    assert_eq!(poll(port, 9)["status"], "processing");
    assert!(started.elapsed() >= Duration::from_millis(500), "{:?}", started.elapsed());
    // Control endpoints answer at once.
    let started = Instant::now();
    assert_eq!(Conn::open(port).request("GET", "/_emulator/stats", "").status, 200);
    assert_eq!(post(port, "/_emulator/task", r#"{"type": "ImageToTextTask"}"#).status, 200);
    assert!(started.elapsed() < delay, "{:?}", started.elapsed());
    // Without stamping, solutions are untouched.
    assert_eq!(poll(port, id)["solution"], json!({"text": "answer"}));
}

#[test]
fn ready_answers_carry_the_moment_they_were_written() {
    let delay = Duration::from_millis(200);
    let em = Emulator::start(Config {
        answer_delay: delay,
        stamp_ready: true,
        solve_after: Duration::ZERO,
        ..Config::default()
    })
    .unwrap();
    let port = em.port();
    let id = em.add_task("ImageToTextTask");
    let before = unix_micros();
    let ready = poll(port, id);
    let after = unix_micros();
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["solution"]["text"], "answer", "the solution is kept");
    let stamp = stamp_of(&ready);
    assert!(stamp >= before + delay.as_micros() && stamp <= after, "{before} {stamp} {after}");

    // A stamp is taken per answer, also for scripted ready steps; processing answers, errors
    // and solutions that are not objects get none.
    em.script_task(5, vec![Step::processing(), Step::ready(json!({"token": "t"})), Step::ready(json!("plain"))]);
    assert_eq!(
        poll(port, 5),
        json!({"errorCode": null, "errorDescription": null, "errorId": 0, "status": "processing"})
    );
    let first = poll(port, 5);
    assert_eq!(first["solution"]["token"], "t");
    assert_eq!(poll(port, 5)["solution"], json!("plain"));
    assert!(stamp_of(&first) > stamp);
    let later = poll(port, id);
    assert!(stamp_of(&later) >= stamp_of(&first) + delay.as_micros());
    assert_eq!(poll(port, 424242)["errorCode"], "ERROR_NO_SUCH_CAPCHA_ID");
    let other = Emulator::start(Config { solve_after: Duration::ZERO, ..Config::default() }).unwrap();
    let plain = other.add_task("TurnstileTask");
    assert!(poll(other.port(), plain)["solution"].get(STAMP_FIELD).is_none(), "off by default");
}

#[test]
fn many_tasks_at_once_with_readiness_spread_evenly() {
    let em = Emulator::start(Config::default()).unwrap();
    let port = em.port();
    let created = post(
        port,
        "/_emulator/tasks",
        r#"{"type": "ImageToTextTask", "count": 5, "solveAfterMs": 0, "spreadMs": 1500}"#,
    );
    assert_eq!((created.status, created.json()), (200, json!({"firstTaskId": 1000, "count": 5})));
    let started = Instant::now();
    // Task 1000 + j is ready 300 * j ms after creation.
    assert_eq!(poll(port, 1000)["status"], "ready");
    assert_eq!(poll(port, 1000)["solution"]["text"], "answer");
    for id in 1002..=1004 {
        assert_eq!(poll(port, id)["status"], "processing", "{id}");
    }
    thread::sleep(Duration::from_millis(750).saturating_sub(started.elapsed()));
    if started.elapsed() < Duration::from_millis(850) {
        assert_eq!(poll(port, 1002)["status"], "ready");
        assert_eq!(poll(port, 1003)["status"], "processing");
    }
    thread::sleep(Duration::from_millis(1300).saturating_sub(started.elapsed()));
    assert_eq!(poll(port, 1004)["status"], "ready");
    // Ids go on from there; the default solve delay applies without solveAfterMs.
    let one = post(port, "/_emulator/tasks", r#"{"type": "TurnstileTask", "count": 1}"#).json();
    assert_eq!(one, json!({"firstTaskId": 1005, "count": 1}));
    assert_eq!(poll(port, 1005)["status"], "processing");
    assert_eq!(em.add_task("ImageToTextTask"), 1006);
    assert_eq!(em.task_requests(1004), 2);

    for bad in [
        r#"{"type": "ImageToTextTask", "count": 0}"#,
        r#"{"type": "ImageToTextTask", "count": 1000001}"#,
        r#"{"type": "ImageToTextTask"}"#,
        r#"{"type": "ImageToTextTask", "count": 2, "spreadMs": -1}"#,
        r#"{"type": "ImageToTextTask", "count": 2, "solveAfterMs": "5"}"#,
        r#"{"type": "NoSuchTask", "count": 2}"#,
        r#"{"count": 2}"#,
        "[",
    ] {
        assert_eq!(post(port, "/_emulator/tasks", bad).status, 400, "{bad}");
    }
    assert_eq!(Conn::open(port).request("GET", "/_emulator/tasks", "").status, 405);
    // All or nothing: a batch that does not fit is refused whole.
    let big = post(port, "/_emulator/tasks", r#"{"type": "ImageToTextTask", "count": 1000000}"#);
    assert_eq!(big.status, 503, "{}", big.text());
    assert_eq!(em.add_task("ImageToTextTask"), 1007, "nothing of it was created");
}

#[test]
fn short_delays_are_kept_precisely() {
    // Socket timeouts tick with the kernel (10 ms steps at HZ=100): a 15 ms delay must not
    // become 20 or 30 ms. The fastest of a few answers shows the delay without scheduling noise.
    let delay = Duration::from_millis(15);
    let em = Emulator::start(Config { answer_delay: delay, ..Config::default() }).unwrap();
    em.script_task(3, vec![Step::processing().delay(15)]);
    let mut conn = Conn::open(em.port());
    let fastest = |conn: &mut Conn, path: &str, body: &str, least: Duration| {
        (0..7)
            .map(|_| {
                let started = Instant::now();
                assert_eq!(conn.request("POST", path, body).status, 200);
                let took = started.elapsed();
                assert!(took >= least, "{path}: {took:?}");
                took
            })
            .min()
            .unwrap()
    };
    let balance = fastest(&mut conn, "/getBalance", r#"{"clientKey":"k"}"#, delay);
    assert!(balance < delay + Duration::from_millis(4), "{balance:?}");
    let scripted = fastest(&mut conn, "/getTaskResult", r#"{"taskId":3}"#, 2 * delay);
    assert!(scripted < 2 * delay + Duration::from_millis(4), "{scripted:?}");
}

#[test]
fn max_connections_bounds_the_connections_served_at_once() {
    let em = Emulator::start(Config { max_connections: 3, ..Config::default() }).unwrap();
    let mut open: Vec<Conn> = (0..3).map(|_| Conn::open(em.port())).collect();
    for conn in &mut open {
        assert_eq!(conn.request("POST", "/getBalance", r#"{"clientKey":"k"}"#).status, 200);
    }
    // A fourth, while three are open: accepted and closed at once.
    let mut fourth = Conn::open(em.port());
    assert!(fourth.closed_by_server());
    // One closed: a new one is served.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut conn = Conn::open(em.port());
        conn.send("POST", "/getBalance", r#"{"clientKey":"k"}"#);
        if let Some(resp) = conn.try_read() {
            assert_eq!(resp.status, 200);
            break;
        }
        assert!(Instant::now() < deadline, "no connection served after one closed");
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn tasks_can_turn_ready_a_while_after_their_first_poll() {
    let em = Emulator::start(Config { stamp_ready: true, ..Config::default() }).unwrap();
    let port = em.port();
    // Margins of a quarter second either side: the machine may be loaded, and a request's
    // way to the emulator is not instant.
    let body = r#"{"type": "ImageToTextTask", "count": 2, "readyAfterFirstPollMs": 1000}"#;
    assert_eq!(post(port, "/_emulator/tasks", body).json(), json!({"firstTaskId": 1000, "count": 2}));
    // Not polled yet: however long that lasts, readiness counts from the first poll.
    thread::sleep(Duration::from_millis(1100));
    let first_poll = unix_micros();
    let started = Instant::now();
    assert_eq!(poll(port, 1000)["status"], "processing");
    thread::sleep(Duration::from_millis(500).saturating_sub(started.elapsed()));
    assert_eq!(poll(port, 1000)["status"], "processing");
    assert_eq!(poll(port, 1001)["status"], "processing", "the other task's clock starts now");
    thread::sleep(Duration::from_millis(1250).saturating_sub(started.elapsed()));
    let ready = poll(port, 1000);
    assert_eq!(ready["status"], "ready");
    // The answer says when the task turned ready (first poll + 1000 ms) and when it was sent.
    let ready_at: u128 = ready["solution"][READY_STAMP_FIELD].as_str().unwrap().parse().unwrap();
    assert!(ready_at >= first_poll + 1_000_000 && ready_at <= first_poll + 1_250_000, "{first_poll} {ready_at}");
    assert!(stamp_of(&ready) >= ready_at);
    assert_eq!(poll(port, 1001)["status"], "processing");
    // Tasks ready after a solve delay carry their readiness too.
    let id = post(port, "/_emulator/task", r#"{"type": "ImageToTextTask", "solveAfterMs": 0}"#).json()["taskId"]
        .as_i64()
        .unwrap();
    let ready = poll(port, id);
    assert!(ready["solution"][READY_STAMP_FIELD].as_str().unwrap().parse::<u128>().unwrap() <= stamp_of(&ready));
    let bad = r#"{"type": "ImageToTextTask", "count": 2, "readyAfterFirstPollMs": -1}"#;
    assert_eq!(post(port, "/_emulator/tasks", bad).status, 400);
}

#[test]
fn thousands_of_connections_at_once_are_all_accepted_and_the_peak_is_counted() {
    // Far more connections opened at once than std's listen queue of 128 holds while the
    // accept loop starts a task for each: with the wider queue none waits for a SYN
    // retry (a second at least), which a benchmark would count as its client's lateness.
    const N: usize = 1500;
    let em = Emulator::start(Config { max_connections: 2000, ..Config::default() }).unwrap();
    let port = em.port();
    let started = Instant::now();
    let mut conns: Vec<Conn> = (0..N).map(|_| Conn::open(port)).collect();
    for conn in &mut conns {
        conn.send("POST", "/getBalance", r#"{"clientKey":"k"}"#);
    }
    for conn in &mut conns {
        assert_eq!(conn.read().status, 200);
    }
    assert!(started.elapsed() < Duration::from_millis(1000), "{:?}: a SYN was retried?", started.elapsed());
    let stats = Conn::open(port).request("GET", "/_emulator/stats", "").json();
    assert_eq!(stats["connections"], N as u64 + 1);
    assert_eq!(stats["peakConnections"], N as u64 + 1);
    drop(conns);
    // The emulator's two threads see the 1,500 hang-ups one after another: give them a moment.
    let closed = Instant::now();
    loop {
        assert_eq!(post(port, "/_emulator/reset", "").status, 200);
        let stats = Conn::open(port).request("GET", "/_emulator/stats", "").json();
        if stats["peakConnections"].as_u64().unwrap() <= 2 {
            break;
        }
        assert!(closed.elapsed() < Duration::from_secs(1), "closed connections still counted: {stats}");
        thread::sleep(Duration::from_millis(10));
    }
}
