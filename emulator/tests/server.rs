//! The emulator over real sockets: service behaviour, scripts, faults, keep-alive, control.

mod common;

use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use capmonster_emulator::{Config, Emulator, Step, MAX_POLLS_PER_TASK};
use common::{post, Conn};
use serde_json::{json, Value};

fn start(solve_after_ms: u64) -> Emulator {
    Emulator::start(Config { solve_after: Duration::from_millis(solve_after_ms), ..Config::default() }).expect("start")
}

fn poll(port: u16, task_id: i64) -> Value {
    post(port, "/getTaskResult", &json!({"clientKey": "k", "taskId": task_id}).to_string()).json()
}

#[test]
fn unscripted_create_processing_ready() {
    let em = start(100);
    assert!(em.url().starts_with("http://127.0.0.1:"));
    assert_eq!(em.url(), format!("http://127.0.0.1:{}", em.port()));
    let create = json!({"clientKey": "k", "task": {"type": "ImageToTextTask", "body": "aGVsbG8="}});
    let resp = post(em.port(), "/createTask", &create.to_string());
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("Content-Type"), Some("application/json; charset=utf-8"));
    assert_eq!(resp.json(), json!({"errorId": 0, "taskId": 1000}));
    assert_eq!(post(em.port(), "/createTask", &create.to_string()).json()["taskId"], 1001);

    assert_eq!(
        poll(em.port(), 1000),
        json!({"errorCode": null, "errorDescription": null, "errorId": 0, "status": "processing"})
    );
    thread::sleep(Duration::from_millis(150));
    let ready = poll(em.port(), 1000);
    assert_eq!(ready["errorId"], 0);
    assert_eq!(ready["status"], "ready");
    assert_eq!(ready["solution"], json!({"text": "answer"}));
    for extra in ["cost", "ip", "createTime", "endTime", "solveCount"] {
        assert!(ready.get(extra).is_some(), "{extra} missing");
    }
    assert_eq!(em.task_requests(1000), 2);
    assert_eq!(em.task_requests(1001), 0);
    assert_eq!(em.method_requests("createTask"), 2);
    assert_eq!(em.method_requests("getTaskResult"), 2);
    assert_eq!(em.connections(), 4);
}

#[test]
fn solutions_follow_the_task_type() {
    let em = start(0);
    let cases = [
        (json!({"type": "HCaptchaTaskProxyless"}), vec!["gRecaptchaResponse", "respKey", "userAgent"]),
        (json!({"type": "TurnstileTask"}), vec!["token", "userAgent"]),
        (json!({"type": "RecaptchaV3TaskProxyless"}), vec!["gRecaptchaResponse"]),
        (json!({"type": "AmazonTask"}), vec!["cookies", "userAgent"]),
        (json!({"type": "GeeTestTask"}), vec!["challenge", "seccode", "validate"]),
        (json!({"type": "ComplexImageTask"}), vec!["answer", "metadata"]),
        (json!({"type": "CustomTask", "class": "DataDome"}), vec!["data", "domains", "fingerprint", "headers", "url"]),
    ];
    for (task, keys) in cases {
        let create = json!({"clientKey": "k", "task": task});
        let id = post(em.port(), "/createTask", &create.to_string()).json()["taskId"].as_i64().unwrap();
        let solution = poll(em.port(), id)["solution"].clone();
        let mut got: Vec<&str> = solution.as_object().unwrap().keys().map(String::as_str).collect();
        got.sort_unstable();
        assert_eq!(got, keys, "{task}");
    }
    let id = em.add_task("ComplexImageTask");
    assert_eq!(poll(em.port(), id)["solution"]["metadata"]["AnswerType"], "Grid");
}

#[test]
fn solve_delay_per_task_and_callback_url() {
    let em = start(60_000);
    let slow = em.add_task("ImageToTextTask");
    let create = json!({
        "clientKey": "k",
        "callbackUrl": "http://example.invalid/cb",
        "task": {"type": "ImageToTextTask", "body": "x", "emulatorSolveAfterMs": 0}
    });
    let fast = post(em.port(), "/createTask", &create.to_string()).json()["taskId"].as_i64().unwrap();
    assert_eq!(poll(em.port(), slow)["status"], "processing");
    assert_eq!(poll(em.port(), fast)["status"], "ready");
    assert_eq!(em.callback_url(fast).as_deref(), Some("http://example.invalid/cb"));
    assert_eq!(em.callback_url(slow), None);
    let bad = json!({"clientKey": "k", "task": {"type": "ImageToTextTask", "body": "x", "emulatorSolveAfterMs": -1}});
    assert_eq!(post(em.port(), "/createTask", &bad.to_string()).json()["errorId"], 1);
}

#[test]
fn bad_keys_are_refused() {
    let em = Emulator::start(Config { client_key: Some("right".into()), ..Config::default() }).unwrap();
    let key_error = json!({
        "errorId": 1,
        "errorCode": "ERROR_KEY_DOES_NOT_EXIST",
        "errorDescription": "Account authorization key not found in the system or has incorrect format"
    });
    for body in [json!({}), json!({"clientKey": ""}), json!({"clientKey": 5}), json!({"clientKey": "wrong"})] {
        assert_eq!(post(em.port(), "/getBalance", &body.to_string()).json(), key_error, "{body}");
    }
    let mut with_task_id = key_error.clone();
    with_task_id["taskId"] = json!(0);
    let create = json!({"clientKey": "wrong", "task": {"type": "ImageToTextTask", "body": "x"}});
    assert_eq!(post(em.port(), "/createTask", &create.to_string()).json(), with_task_id);
    assert_eq!(
        post(em.port(), "/getBalance", r#"{"clientKey":"right"}"#).json(),
        json!({"errorId": 0, "balance": 345.678})
    );
    assert_eq!(em.method_requests("getBalance"), 5);
}

#[test]
fn create_task_validation() {
    let em = start(0);
    let code = |task: Value| {
        let body = json!({"clientKey": "k", "task": task}).to_string();
        let answer = post(em.port(), "/createTask", &body).json();
        assert_eq!(answer["taskId"], 0, "{answer}");
        answer["errorCode"].as_str().unwrap_or("").to_owned()
    };
    assert_eq!(code(Value::Null), "ERROR_TASK_ABSENT");
    assert_eq!(code(json!("ImageToTextTask")), "ERROR_TASK_ABSENT");
    assert_eq!(code(json!({"type": 3})), "ERROR_TASK_ABSENT");
    assert_eq!(code(json!({"type": "NoSuchTask"})), "ERROR_TASK_NOT_SUPPORTED");
    assert_eq!(code(json!({"type": "ImageToTextTask"})), "ERROR_ZERO_CAPTCHA_FILESIZE");
    assert_eq!(code(json!({"type": "ImageToTextTask", "body": ""})), "ERROR_ZERO_CAPTCHA_FILESIZE");
    assert_eq!(em.add_task("ImageToTextTask"), 1000, "failed creates use no ids");
}

#[test]
fn unknown_task_ids() {
    let em = start(0);
    for body in [json!({"clientKey": "k", "taskId": 424242}), json!({"clientKey": "k", "taskId": "1000"})] {
        let answer = post(em.port(), "/getTaskResult", &body.to_string()).json();
        assert_eq!(answer["errorId"], 1);
        assert_eq!(answer["errorCode"], "ERROR_NO_SUCH_CAPCHA_ID");
        assert!(answer["errorDescription"].as_str().unwrap().contains("not found"));
    }
    assert_eq!(em.task_requests(424242), 1);
    assert_eq!(em.method_requests("getTaskResult"), 2);
}

#[test]
fn too_many_polls_for_one_task() {
    let em = start(0);
    let id = em.add_task("TurnstileTask");
    let mut conn = Conn::open(em.port());
    let body = json!({"clientKey": "k", "taskId": id}).to_string();
    for _ in 0..MAX_POLLS_PER_TASK {
        assert_eq!(conn.request("POST", "/getTaskResult", &body).json()["status"], "ready");
    }
    for _ in 0..2 {
        let answer = conn.request("POST", "/getTaskResult", &body).json();
        assert_eq!(answer["errorCode"], "ERROR_TOO_MUCH_REQUESTS");
    }
    assert_eq!(em.task_requests(id), MAX_POLLS_PER_TASK + 2);
    assert_eq!(em.connections(), 1);
}

#[test]
fn http_level_errors() {
    let em = start(0);
    let port = em.port();
    let resp = post(port, "/nope", "{}");
    assert_eq!(resp.status, 404);
    assert!(resp.header("Content-Type").unwrap().starts_with("text/html"));

    let resp = Conn::open(port).request("GET", "/getBalance", "");
    assert_eq!((resp.status, resp.header("Allow")), (405, Some("POST")));

    let resp = post(port, "/getBalance", "{not json");
    assert_eq!(resp.status, 400);
    assert!(resp.header("Content-Type").unwrap().starts_with("text/plain"));
    assert_eq!(em.method_requests("getBalance"), 1, "bad JSON still counts as a request");

    let mut conn = Conn::open(port);
    conn.send_raw(b"POST /getBalance HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n");
    assert_eq!(conn.read().status, 411);
    assert!(conn.closed_by_server());

    let mut conn = Conn::open(port);
    conn.send_raw(b"POST /getBalance HTTP/1.1\r\nContent-Length: 16777217\r\n\r\n");
    assert_eq!(conn.read().status, 413);

    let mut conn = Conn::open(port);
    let mut head = b"POST /getBalance HTTP/1.1\r\nX-Big: ".to_vec();
    head.resize(70 * 1024, b'a');
    head.extend_from_slice(b"\r\n\r\n");
    conn.send_raw(&head);
    assert_eq!(conn.read().status, 431);

    let mut conn = Conn::open(port);
    conn.send_raw(b"POST /getBalance HTTP/1.0\r\nContent-Length: 17\r\n\r\n{\"clientKey\":\"k\"}");
    let resp = conn.read();
    assert_eq!((resp.status, resp.header("Connection")), (200, Some("close")));
    assert!(conn.closed_by_server());

    let mut conn = Conn::open(port);
    conn.send_raw(b"POST /getBalance HTTP/1.1\r\nConnection: close\r\nContent-Length: 17\r\n\r\n{\"clientKey\":\"k\"}");
    assert_eq!(conn.read().header("Connection"), Some("close"));
    assert!(conn.closed_by_server());
}

#[test]
fn keep_alive_pipelining_and_expect_continue() {
    let em = start(0);
    let mut conn = Conn::open(em.port());
    let first = conn.request("POST", "/getBalance", r#"{"clientKey":"k"}"#);
    assert_eq!(first.header("Connection"), Some("keep-alive"));
    assert_eq!(conn.request("POST", "/getBalance", r#"{"clientKey":"k"}"#).json()["balance"], 345.678);

    // Two requests in one write: both answered, in order.
    let one = "POST /getBalance HTTP/1.1\r\nContent-Length: 17\r\n\r\n{\"clientKey\":\"k\"}";
    conn.send_raw(format!("{one}POST /nope HTTP/1.1\r\nContent-Length: 0\r\n\r\n").as_bytes());
    assert_eq!(conn.read().status, 200);
    assert_eq!(conn.read().status, 404);

    conn.send_raw(b"POST /getBalance HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 17\r\n\r\n");
    let (status, _) = conn.read_head().unwrap();
    assert_eq!(status, 100);
    conn.send_raw(b"{\"clientKey\":\"k\"}");
    assert_eq!(conn.read().status, 200);

    assert_eq!(em.connections(), 1);
    assert_eq!(em.method_requests("getBalance"), 4);
}

#[test]
fn every_answer_step_form() {
    let em = start(0);
    em.script_task(
        7,
        vec![
            Step::processing(),
            Step::ready(json!({"gRecaptchaResponse": "tok"})),
            Step::api_error("ERROR_ZERO_BALANCE", "no money", 402),
            serde_json::from_value(json!({"error": "ERROR_CAPTCHA_UNSOLVABLE"})).unwrap(),
            Step::json(503, json!({"whatever": [1, 2]})),
            Step::raw(502, "<html>bad gateway</html>"),
            serde_json::from_value(json!({"raw": "<p>", "status": 500, "content_type": "text/html"})).unwrap(),
        ],
    );
    let mut conn = Conn::open(em.port());
    let mut next = || conn.request("POST", "/getTaskResult", r#"{"taskId":7}"#);

    assert_eq!(next().json()["status"], "processing");
    let ready = next().json();
    assert_eq!(
        (ready["status"].as_str(), ready["solution"]["gRecaptchaResponse"].as_str()),
        (Some("ready"), Some("tok"))
    );
    assert_eq!(ready["cost"], 0.0002);
    let resp = next();
    assert_eq!(resp.status, 402);
    assert_eq!(resp.json(), json!({"errorId": 1, "errorCode": "ERROR_ZERO_BALANCE", "errorDescription": "no money"}));
    let resp = next();
    assert_eq!((resp.status, resp.json()), (200, json!({"errorId": 1, "errorCode": "ERROR_CAPTCHA_UNSOLVABLE"})));
    let resp = next();
    assert_eq!((resp.status, resp.json()), (503, json!({"whatever": [1, 2]})));
    let resp = next();
    assert_eq!((resp.status, resp.text().as_str()), (502, "<html>bad gateway</html>"));
    assert!(resp.header("Content-Type").unwrap().starts_with("text/plain"));
    let resp = next();
    assert_eq!((resp.status, resp.header("Content-Type")), (500, Some("text/html")));
    // The last step is sticky.
    assert_eq!(next().text(), "<p>");
    assert_eq!(next().text(), "<p>");
    assert_eq!(em.task_requests(7), 9);
    assert_eq!(em.connections(), 1);
}

#[test]
fn scripts_replace_and_method_scripts() {
    let em = start(0);
    em.script_task(9, vec![Step::processing()]);
    em.script_task(9, vec![Step::ready(json!({"text": "new"}))]);
    assert_eq!(poll(em.port(), 9)["solution"]["text"], "new");
    em.script_task(9, Vec::new());
    assert_eq!(poll(em.port(), 9)["errorCode"], "ERROR_NO_SUCH_CAPCHA_ID", "empty list removes the script");

    em.script_method("createTask", vec![Step::api_error("ERROR_NO_SLOT_AVAILABLE", "busy", 200)]);
    let create = json!({"clientKey": "k", "task": {"type": "ImageToTextTask", "body": "x"}}).to_string();
    let answer = post(em.port(), "/createTask", &create).json();
    assert_eq!((answer["errorCode"].as_str(), answer["taskId"].as_i64()), (Some("ERROR_NO_SLOT_AVAILABLE"), Some(0)));
    em.script_method("getBalance", vec![Step::json(200, json!({"errorId": 0, "balance": 1}))]);
    assert_eq!(post(em.port(), "/getBalance", "{}").json()["balance"], 1, "scripts skip the key check");
    assert_eq!(em.method_requests("createTask"), 1);
}

#[test]
fn delay_and_close_after() {
    let em = start(0);
    em.script_task(3, vec![Step::processing().delay(200).close_after(), Step::processing()]);
    let mut conn = Conn::open(em.port());
    let started = Instant::now();
    let resp = conn.request("POST", "/getTaskResult", r#"{"taskId":3}"#);
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(resp.header("Connection"), Some("keep-alive"), "close_after advertises keep-alive");
    assert!(conn.closed_by_server());
    assert_eq!(em.task_requests(3), 1);

    let mut conn = Conn::open(em.port());
    assert_eq!(conn.request("POST", "/getTaskResult", r#"{"taskId":3}"#).status, 200);
    assert_eq!(em.connections(), 2);
}

#[test]
fn fault_close_and_garbage() {
    let em = start(0);
    em.script_task(1, vec![Step::close(), Step::garbage()]);
    let mut conn = Conn::open(em.port());
    conn.send("POST", "/getTaskResult", r#"{"taskId":1}"#);
    assert!(conn.read_to_close(1 << 20).is_empty(), "close writes nothing");
    let mut conn = Conn::open(em.port());
    conn.send("POST", "/getTaskResult", r#"{"taskId":1}"#);
    assert_eq!(conn.read_to_close(1 << 20), b"SSH-2.0-garbage\r\n");
    assert_eq!(em.task_requests(1), 2, "faulted requests are counted");
}

#[test]
fn fault_stall() {
    let em = start(0);
    em.script_task(2, vec![serde_json::from_value(json!({"fault": "stall", "ms": 300})).unwrap()]);
    let mut conn = Conn::open(em.port());
    let started = Instant::now();
    conn.send("POST", "/getTaskResult", r#"{"taskId":2}"#);
    assert!(conn.read_to_close(1 << 20).is_empty());
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    assert_eq!(em.task_requests(2), 1);
}

#[test]
fn fault_truncate() {
    let em = start(0);
    em.script_task(4, vec![Step::truncate()]);
    let mut conn = Conn::open(em.port());
    conn.send("POST", "/getTaskResult", r#"{"taskId":4}"#);
    let (status, headers) = conn.read_head().unwrap();
    assert_eq!(status, 200);
    assert!(headers.contains(&("Content-Length".into(), "1000".into())));
    let body = conn.read_to_close(2000);
    assert!(!body.is_empty() && body.len() < 1000);
    assert!(serde_json::from_slice::<Value>(&body).is_err());
}

#[test]
fn fault_oversize() {
    let em = start(0);
    let bytes = 3 * 1024 * 1024 + 7;
    em.script_task(5, vec![serde_json::from_value(json!({"fault": "oversize", "bytes": bytes})).unwrap()]);
    let mut conn = Conn::open(em.port());
    conn.send("POST", "/getTaskResult", r#"{"taskId":5}"#);
    let resp = conn.read();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body.len(), bytes);
    assert_eq!(resp.json()["status"], "processing");

    // A client that stops reading early and hangs up doesn't bother the server.
    let mut conn = Conn::open(em.port());
    conn.send("POST", "/getTaskResult", r#"{"taskId":5}"#);
    assert_eq!(conn.read_head().unwrap().0, 200);
    drop(conn);
    assert_eq!(poll(em.port(), 5)["status"], "processing");
}

#[test]
fn control_endpoints() {
    let em = start(0);
    let port = em.port();
    let ok = post(port, "/_emulator/script", r#"{"taskId": 77, "steps": ["processing", {"ready": {"text": "x"}}]}"#);
    assert_eq!((ok.status, ok.json()), (200, json!({"ok": true})));
    let ok = post(port, "/_emulator/script", r#"{"method": "getBalance", "steps": [{"error": "ERROR_IP_BANNED"}]}"#);
    assert_eq!(ok.status, 200);
    assert_eq!(poll(port, 77)["status"], "processing");
    assert_eq!(poll(port, 77)["solution"]["text"], "x");
    assert_eq!(post(port, "/getBalance", "{}").json()["errorCode"], "ERROR_IP_BANNED");

    let created = post(port, "/_emulator/task", r#"{"type": "ImageToTextTask", "solveAfterMs": 0}"#).json();
    assert_eq!(created, json!({"taskId": 1000}));
    assert_eq!(poll(port, 1000)["solution"]["text"], "answer");

    let stats = Conn::open(port).request("GET", "/_emulator/stats", "").json();
    assert_eq!(stats, em.stats_json());
    assert_eq!(stats["methods"]["getTaskResult"], 3);
    assert_eq!(stats["methods"]["getBalance"], 1);
    assert_eq!(stats["methods"]["createTask"], 0);
    assert_eq!(stats["tasks"], json!({"77": 2, "1000": 1}));
    assert_eq!(stats["connections"], 8);

    assert_eq!(post(port, "/_emulator/reset", "").status, 200);
    assert_eq!(em.task_requests(77), 0);
    assert_eq!(em.method_requests("getTaskResult"), 0);
    assert_eq!(poll(port, 77)["errorCode"], "ERROR_NO_SUCH_CAPCHA_ID", "scripts cleared");
    assert_eq!(poll(port, 1000)["errorCode"], "ERROR_NO_SUCH_CAPCHA_ID", "tasks cleared");
    assert_eq!(em.add_task("ImageToTextTask"), 1000, "ids restart");
    assert_eq!(Conn::open(port).request("GET", "/_emulator/script", "").status, 405);
}

#[test]
fn bad_scripts_are_rejected_with_a_message() {
    let em = start(0);
    for bad in [
        "not json",
        r#"{"steps": []}"#,
        r#"{"taskId": 1, "steps": ["done"]}"#,
        r#"{"taskId": 1, "steps": [{"fault": "explode"}]}"#,
        r#"{"taskId": 1, "steps": [{"fault": "stall", "ms": 600001}]}"#,
        r#"{"method": "getWeather", "steps": ["processing"]}"#,
        r#"{"taskId": 1, "steps": [{"ready": {}, "delayMs": 5}]}"#,
    ] {
        let resp = post(em.port(), "/_emulator/script", bad);
        assert_eq!(resp.status, 400, "{bad}");
        assert!(!resp.text().trim().is_empty());
    }
    for bad in [r#"{"type": "Nope"}"#, r#"{}"#, r#"{"type": "ImageToTextTask", "solveAfterMs": "1"}"#] {
        assert_eq!(post(em.port(), "/_emulator/task", bad).status, 400, "{bad}");
    }
    assert_eq!(poll(em.port(), 1)["errorCode"], "ERROR_NO_SUCH_CAPCHA_ID", "nothing was installed");
}

#[test]
fn drop_stops_the_server_and_open_connections() {
    let em = start(0);
    let port = em.port();
    let mut conn = Conn::open(port);
    assert_eq!(conn.request("POST", "/getBalance", r#"{"clientKey":"k"}"#).status, 200);
    drop(em);
    assert!(conn.closed_by_server(), "an idle keep-alive connection is closed");
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens any more");
}

#[test]
fn report_incorrect_captcha() {
    let em = start(0);
    let id = em.add_task("ImageToTextTask");
    em.script_task(31, vec![Step::processing()]);
    for method in ["/reportIncorrectImageCaptcha", "/reportIncorrectTokenCaptcha"] {
        for known in [id, 31] {
            let body = json!({"clientKey": "k", "taskId": known}).to_string();
            assert_eq!(post(em.port(), method, &body).json(), json!({"errorId": 0, "status": "success"}));
        }
        let body = json!({"clientKey": "k", "taskId": 5}).to_string();
        assert_eq!(post(em.port(), method, &body).json()["errorCode"], "ERROR_NO_SUCH_CAPCHA_ID");
    }
    assert_eq!(em.method_requests("reportIncorrectImageCaptcha"), 3);
    assert_eq!(em.task_requests(31), 0, "only getTaskResult counts per task");
}

#[test]
fn emulator_can_be_shared_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Emulator>();
    let em = std::sync::Arc::new(start(0));
    let id = em.add_task("ImageToTextTask");
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let em = std::sync::Arc::clone(&em);
            thread::spawn(move || poll(em.port(), id)["status"].as_str().map(str::to_owned))
        })
        .collect();
    for w in workers {
        assert_eq!(w.join().unwrap().as_deref(), Some("ready"));
    }
    assert_eq!(em.task_requests(id), 8);
    assert_eq!(em.connections(), 8);
}

#[test]
fn the_account_can_be_revoked_emptied_and_banned() {
    let em = start(0);
    let port = em.port();
    let call = |method: &str, key: &str, task: Value| {
        post(port, method, &json!({"clientKey": key, "task": task, "taskId": 1000}).to_string()).json()
    };
    let image = json!({"type": "ImageToTextTask", "body": "aGVsbG8="});
    assert_eq!(call("/createTask", "k", image.clone())["taskId"], 1000);

    em.update_account(json!({"revokedKeys": ["k"]})).unwrap();
    for method in ["/createTask", "/getTaskResult", "/getBalance", "/reportIncorrectImageCaptcha"] {
        assert_eq!(call(method, "k", image.clone())["errorCode"], "ERROR_KEY_DOES_NOT_EXIST", "{method}");
    }
    assert_eq!(call("/getBalance", "other", Value::Null)["balance"], 345.678);

    // Zero balance: no new task, but existing tasks and the balance still answer.
    em.update_account(json!({"balance": 0})).unwrap();
    assert_eq!(call("/createTask", "other", image.clone())["errorCode"], "ERROR_ZERO_BALANCE");
    assert_eq!(call("/getTaskResult", "other", Value::Null)["status"], "ready");
    assert_eq!(call("/getBalance", "other", Value::Null), json!({"errorId": 0, "balance": 0.0}));

    // A banned proxy refuses the tasks that name it, and only those.
    em.update_account(json!({"balance": 5, "bannedProxies": ["10.0.0.1:3128"]})).unwrap();
    let proxied = |address: &str| {
        json!({"type": "RecaptchaV2Task", "websiteURL": "https://a.b", "websiteKey": "x",
        "proxyType": "http", "proxyAddress": address, "proxyPort": 3128})
    };
    assert_eq!(call("/createTask", "other", proxied("10.0.0.1"))["errorCode"], "ERROR_PROXY_BANNED");
    assert_eq!(call("/createTask", "other", proxied("10.0.0.2"))["errorId"], 0);

    // An address ban answers every call, whatever the key; lifting it restores the service.
    let control = |body: Value| post(port, "/_emulator/account", &body.to_string());
    assert_eq!(control(json!({"addressBan": "ERROR_IP_NOT_ALLOWED"})).status, 200);
    assert_eq!(call("/getBalance", "other", Value::Null)["errorCode"], "ERROR_IP_NOT_ALLOWED");
    assert_eq!(call("/createTask", "anyone", image.clone())["taskId"], 0);
    let bad = control(json!({"addressBan": "ERROR_OTHER"}));
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("addressBan"), "{}", bad.text());
    assert_eq!(control(json!({"addressBan": null})).json()["addressBan"], Value::Null);
    assert_eq!(call("/getBalance", "other", Value::Null)["balance"], 5.0);
    assert_eq!(em.account().revoked_keys, ["k"]);

    // A reset gives the account back its configured standing.
    em.reset();
    assert_eq!(em.account().revoked_keys, Vec::<String>::new());
    assert_eq!(call("/getBalance", "k", Value::Null)["balance"], 345.678);
}

/// The process's threads now (Linux: the entries of /proc/self/task).
#[cfg(target_os = "linux")]
fn threads_now() -> usize {
    std::fs::read_dir("/proc/self/task").expect("/proc/self/task").count()
}

/// Raises the soft limit of open files to the hard one; returns the limit now.
#[cfg(target_os = "linux")]
fn raise_open_files_limit() -> usize {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit with a valid pointer to a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit = raised;
            }
        }
    }
    usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX)
}

#[test]
#[cfg(target_os = "linux")]
fn twenty_thousand_connections_at_once_are_served_on_a_few_threads() {
    // Each connection takes two descriptors here (the client's and the emulator's end); the
    // other tests of this binary, run beside it, keep up to 2,000 more (a thousand idle
    // connections), and the harness a few: 4,000 are left to them.
    const WANTED: usize = 20_000;
    let fits = raise_open_files_limit().saturating_sub(4_000) / 2;
    let n = WANTED.min(fits);
    if n < 5_000 {
        eprintln!("skipped: the limit of open files allows {n} connections here, this test wants {WANTED}");
        return;
    }
    if n < WANTED {
        eprintln!("the limit of open files (ulimit -Hn) allows {n} of the {WANTED} connections this test wants");
    }
    let em = Emulator::start(Config { max_connections: WANTED + 1, ..Config::default() }).unwrap();
    let port = em.port();
    // Counted with the emulator's threads already started: what connections add to them.
    let threads_before = threads_now();
    let mut conns: Vec<Conn> = (0..n).map(|_| Conn::open(port)).collect();
    for conn in &mut conns {
        conn.send("POST", "/getBalance", r#"{"clientKey":"k"}"#);
    }
    for conn in &mut conns {
        assert_eq!(conn.read().status, 200);
    }
    // The other tests of this binary start and stop emulators meanwhile: a little slack.
    let threads_open = threads_now();
    assert!(threads_open <= threads_before + 16, "{threads_before} threads, {threads_open} with {n} connections open");
    let stats = Conn::open(port).request("GET", "/_emulator/stats", "").json();
    assert_eq!(stats["connections"], n as u64 + 1);
    assert_eq!(stats["peakConnections"], n as u64 + 1);
    // Still open and served: a second request on every connection.
    for conn in &mut conns {
        assert_eq!(conn.request("POST", "/getBalance", r#"{"clientKey":"k"}"#).status, 200);
    }
    assert_eq!(em.method_requests("getBalance"), 2 * n as u32);
}

/// Sends a request on a fresh connection and reads its answer; `None` when the emulator
/// closed the connection instead (over its limit of connections).
fn try_post(port: u16, path: &str, body: &str) -> Option<common::Resp> {
    let mut conn = Conn::open(port);
    let request = format!("POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    // A connection closed at once may refuse the write: that is the same "no".
    std::io::Write::write_all(&mut conn.stream, request.as_bytes()).ok()?;
    conn.try_read()
}

#[test]
fn a_pause_ends_when_the_client_hangs_up() {
    // One connection at most: the next is served only once the paused one's task and socket
    // are gone, long before the pause would have ended. An emulator for each kind of pause, so
    // that no earlier connection can still hold the place when the paused one connects.
    for task in [1, 2] {
        let em = Emulator::start(Config { max_connections: 1, ..Config::default() }).unwrap();
        let port = em.port();
        em.script_task(1, vec![Step::processing().delay(30_000)]);
        em.script_task(2, vec![serde_json::from_value(json!({"fault": "stall", "ms": 30_000})).unwrap()]);
        let mut paused = Conn::open(port);
        paused.send("POST", "/getTaskResult", &format!(r#"{{"taskId":{task}}}"#));
        let asked = Instant::now();
        while em.task_requests(task) == 0 {
            assert!(asked.elapsed() < Duration::from_secs(5), "the request never arrived");
            thread::sleep(Duration::from_millis(5));
        }
        assert!(try_post(port, "/getBalance", r#"{"clientKey":"k"}"#).is_none(), "the paused one holds the place");
        drop(paused);
        let hung_up = Instant::now();
        loop {
            if let Some(resp) = try_post(port, "/getBalance", r#"{"clientKey":"k"}"#) {
                assert_eq!(resp.status, 200);
                break;
            }
            assert!(hung_up.elapsed() < Duration::from_secs(2), "task {task}: the pause outlived its client");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

#[test]
fn a_pause_with_a_pipelined_request_behind_it_runs_to_its_end() {
    let em = start(0);
    em.script_task(1, vec![Step::processing().delay(300), Step::processing()]);
    let mut conn = Conn::open(em.port());
    let started = Instant::now();
    let one = r#"{"taskId":1}"#;
    let request = format!("POST /getTaskResult HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{one}", one.len());
    conn.send_raw(format!("{request}{request}").as_bytes());
    assert_eq!(conn.read().status, 200);
    assert!(started.elapsed() >= Duration::from_millis(300), "{:?}", started.elapsed());
    assert_eq!(conn.read().status, 200);
    assert_eq!(em.task_requests(1), 2);
}

#[test]
fn answer_delays_are_kept_to_the_millisecond() {
    // tokio's timer has 1 ms steps; a timer on the kernel's tick could add up to 10 ms.
    let em = Emulator::start(Config { answer_delay: Duration::from_millis(10), ..Config::default() }).unwrap();
    let mut conn = Conn::open(em.port());
    let mut took: Vec<Duration> = (0..20)
        .map(|_| {
            let started = Instant::now();
            assert_eq!(conn.request("POST", "/getBalance", r#"{"clientKey":"k"}"#).status, 200);
            started.elapsed()
        })
        .collect();
    took.sort_unstable();
    assert!(took[0] >= Duration::from_millis(10), "{took:?}");
    // The fastest of 20: a loaded machine may delay some answers, not all of them.
    assert!(took[0] < Duration::from_millis(12), "{took:?}");
}

#[test]
fn dropping_the_emulator_closes_a_thousand_idle_connections_at_once() {
    let em = start(0);
    let port = em.port();
    let mut conns: Vec<Conn> = (0..1000).map(|_| Conn::open(port)).collect();
    for conn in &mut conns {
        assert_eq!(conn.request("POST", "/getBalance", r#"{"clientKey":"k"}"#).status, 200);
    }
    let started = Instant::now();
    drop(em);
    assert!(started.elapsed() < Duration::from_secs(1), "drop took {:?}", started.elapsed());
    for conn in &mut conns {
        assert!(conn.closed_by_server());
    }
    assert!(started.elapsed() < Duration::from_secs(2), "EOF came after {:?}", started.elapsed());
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err(), "nothing listens any more");
}

#[test]
fn an_emulator_can_be_dropped_inside_another_runtime() {
    // A caller's async test may own one: dropping must neither panic nor block its thread
    // for long, and the server still stops.
    let outer = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let port = outer.block_on(async {
        let em = start(0);
        let port = em.port();
        assert_eq!(post(port, "/getBalance", r#"{"clientKey":"k"}"#).status, 200);
        let started = Instant::now();
        drop(em);
        assert!(started.elapsed() < Duration::from_millis(100), "{:?}", started.elapsed());
        port
    });
    let dropped = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_ok() {
        assert!(dropped.elapsed() < Duration::from_secs(1), "still listening");
        thread::sleep(Duration::from_millis(5));
    }
}
