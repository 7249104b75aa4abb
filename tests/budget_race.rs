//! The shared budget file under a race: threads of several processes (this test binary run
//! again in child mode) take units for the same tasks through one `Budget` each, while the
//! slots of those tasks' buckets change hands (new tasks evicting old ones), and every task is
//! granted exactly what it asked for, up to 120 in all: never a 121st.
//!
//! Each round has a bucket of its own, filled first with `WAYS` old tasks; once the second of
//! that filling is over, `WAYS` new tasks (the round's target and its churn) take the bucket
//! from them while being counted. Slots keep their last use in whole seconds and a new task
//! takes the least recently used one, so the new tasks, all used in later seconds, only ever
//! evict old ones: no count is lost to an eviction, and each task's total is exact.

#![cfg(any(unix, windows))]

mod common;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use capmonster::budget::file::{bucket_of, WAYS};
use capmonster::budget::{Admission, Budget, KeyDigest, NoticesTold, REQUESTS_PER_TASK};
use common::ScratchDir;

const KEY: &str = "budget-race-key";
const ENDPOINT: &str = "http://127.0.0.1:1";
/// Rounds, each in a bucket of its own.
const ROUNDS: usize = 40;
/// Threads of the test's own process (one `Budget`, as every client of a process shares).
const THREADS: usize = 64;
/// Other processes, and their threads.
const CHILDREN: usize = 3;
const CHILD_THREADS: usize = 16;

/// One round's tasks, all in one bucket: the old ones fill it first; the new ones (the target
/// first, then its churn) take it from them.
struct Round {
    old: Vec<i64>,
    new: Vec<i64>,
}

/// The same rounds in every process: the first `ROUNDS` buckets to hold `2 * WAYS` task ids.
fn rounds(digest: KeyDigest) -> Vec<Round> {
    let mut ids: HashMap<usize, Vec<i64>> = HashMap::new();
    let mut full = Vec::new();
    // Bounded: ids spread evenly over the buckets, so every one fills as ids go on (the first
    // 40 well before 4,096 * 64 ids).
    for id in 1_000_000i64.. {
        let bucket = bucket_of(digest, id);
        let held = ids.entry(bucket).or_default();
        if held.len() < 2 * WAYS {
            held.push(id);
            if held.len() == 2 * WAYS {
                full.push(bucket);
                if full.len() == ROUNDS {
                    break;
                }
            }
        }
    }
    full.iter()
        .map(|bucket| {
            let mut old = ids.remove(bucket).unwrap();
            let new = old.split_off(WAYS);
            Round { old, new }
        })
        .collect()
}

/// What one process saw of one round: grants and attempts per new task.
#[derive(Clone, Default)]
struct Seen {
    granted: Vec<u32>,
    asked: Vec<u32>,
}

fn take(budget: &Budget, digest: KeyDigest, task_id: i64, told: &NoticesTold) -> Admission {
    budget.take(digest, task_id, told, &mut |_| Ok(())).admission.expect("the guard keeps no stop")
}

/// `threads` threads take units for every round in turn: the target until they are refused,
/// and one churn task after each. All start each round together (new tasks inserted at once).
fn race(budget: Arc<Budget>, digest: KeyDigest, threads: usize) -> Vec<Seen> {
    let rounds = Arc::new(rounds(digest));
    let start = Arc::new(Barrier::new(threads));
    let per_thread: Vec<Vec<Seen>> = (0..threads)
        .map(|thread| {
            let (budget, rounds, start) = (Arc::clone(&budget), Arc::clone(&rounds), Arc::clone(&start));
            std::thread::spawn(move || {
                let told = NoticesTold::default();
                let mut seen = vec![Seen { granted: vec![0; WAYS], asked: vec![0; WAYS] }; rounds.len()];
                for (round, seen) in rounds.iter().zip(&mut seen) {
                    start.wait();
                    // Bounded: the target is refused after its 120th grant, in all processes.
                    for turn in thread.. {
                        let target = take(&budget, digest, round.new[0], &told);
                        seen.asked[0] += 1;
                        seen.granted[0] += u32::from(target.is_granted());
                        if let Admission::Spent { .. } = target {
                            break;
                        }
                        assert!(target.is_granted(), "{target:?}");
                        let churn = 1 + turn % (WAYS - 1);
                        seen.asked[churn] += 1;
                        seen.granted[churn] += u32::from(take(&budget, digest, round.new[churn], &told).is_granted());
                    }
                }
                seen
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .collect();
    let mut total = vec![Seen { granted: vec![0; WAYS], asked: vec![0; WAYS] }; ROUNDS];
    for seen in per_thread {
        add(&mut total, &seen);
    }
    total
}

fn add(total: &mut [Seen], seen: &[Seen]) {
    for (total, seen) in total.iter_mut().zip(seen) {
        for way in 0..WAYS {
            total.granted[way] += seen.granted[way];
            total.asked[way] += seen.asked[way];
        }
    }
}

fn shared_budget(path: &std::path::Path) -> Arc<Budget> {
    let budget = Budget::from_settings(None, Some(path.as_os_str().to_owned()));
    assert!(budget.is_shared(), "the budget file opens");
    Arc::new(budget)
}

fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

fn sleep_until(unix_ms_at: u64) {
    let now = unix_ms();
    if unix_ms_at > now {
        std::thread::sleep(Duration::from_millis(unix_ms_at - now));
    }
}

/// Child mode: races like the parent once `RACE_START_MS` comes, and prints what it saw. A
/// no-op in a normal test run.
#[test]
fn race_child() {
    let Ok(start) = std::env::var("RACE_START_MS") else { return };
    let path = std::env::var_os("RACE_BUDGET_FILE").unwrap();
    let budget = shared_budget(std::path::Path::new(&path));
    let digest = KeyDigest::of(KEY, ENDPOINT);
    rounds(digest); // the plan's cost before the start, not in the race
    sleep_until(start.parse().unwrap());
    let seen = race(Arc::clone(&budget), digest, CHILD_THREADS);
    assert!(budget.is_shared(), "the file was never given up");
    for (round, seen) in seen.iter().enumerate() {
        let counts: Vec<String> = (0..WAYS).map(|way| format!("{}/{}", seen.granted[way], seen.asked[way])).collect();
        println!("RACE {round} {}", counts.join(" "));
    }
}

/// A child's rounds from its output.
fn child_seen(output: std::process::Output) -> Vec<Seen> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let mut seen = vec![Seen::default(); ROUNDS];
    // libtest prints the test's name on the first line, before the report.
    for line in stdout.lines().filter_map(|line| line.find("RACE ").map(|at| &line[at + 5..])) {
        let mut fields = line.split(' ');
        let round: usize = fields.next().unwrap().parse().unwrap();
        for pair in fields {
            let (granted, asked) = pair.split_once('/').unwrap();
            seen[round].granted.push(granted.parse().unwrap());
            seen[round].asked.push(asked.parse().unwrap());
        }
    }
    assert!(seen.iter().all(|seen| seen.granted.len() == WAYS), "a whole report: {stdout}");
    seen
}

#[test]
fn threads_of_several_processes_never_grant_a_121st_request_while_slots_change_hands() {
    let dir = ScratchDir::new("capmonster-budget-race", "race");
    let path = dir.join("budget");
    let budget = shared_budget(&path);
    let digest = KeyDigest::of(KEY, ENDPOINT);
    let told = NoticesTold::default();
    for round in rounds(digest) {
        for &old in &round.old {
            assert_eq!(take(&budget, digest, old, &told), Admission::Granted { nth: 1 });
        }
    }
    // The race starts on a whole second after the old tasks' last use (and after the children
    // had time to start): every new task is more recent than every old one.
    let start = (unix_ms() + 500) / 1000 * 1000 + 1000;
    let children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "race_child", "--nocapture", "--test-threads=1"])
                .env("RACE_START_MS", start.to_string())
                .env("RACE_BUDGET_FILE", &path)
                .env_remove("CAPMONSTER_BUDGET")
                .env_remove("CAPMONSTER_BUDGET_FILE")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    sleep_until(start);
    let mut total = race(Arc::clone(&budget), digest, THREADS);
    for child in children {
        add(&mut total, &child_seen(child.wait_with_output().unwrap()));
    }
    assert!(budget.is_shared(), "the file was never given up");

    let rounds = rounds(digest);
    for (round, (seen, tasks)) in total.iter().zip(&rounds).enumerate() {
        assert_eq!(seen.granted[0], REQUESTS_PER_TASK, "round {round}: the target's grants ({} asked)", seen.asked[0]);
        assert_eq!(budget.sent(digest, tasks.new[0]), REQUESTS_PER_TASK, "round {round}: the target's count");
        for way in 1..WAYS {
            let expected = seen.asked[way].min(REQUESTS_PER_TASK);
            assert_eq!(seen.granted[way], expected, "round {round}: churn task {way}, {} asked", seen.asked[way]);
            assert_eq!(budget.sent(digest, tasks.new[way]), expected, "round {round}: churn task {way}'s count");
        }
        // Each new task asked about took an old one's slot (a thread refused the target at
        // once asks about no churn task, so some may never have been asked about).
        let inserted = seen.asked.iter().filter(|&&asked| asked > 0).count();
        let old_kept = tasks.old.iter().filter(|&&old| budget.sent(digest, old) == 1).count();
        assert_eq!(old_kept, WAYS - inserted, "round {round}: old tasks kept");
    }
}
