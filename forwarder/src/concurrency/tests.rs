//! The controller against simulated servers: a closed loop that always has a batch to send, a
//! server of `workers` that each serve one request at a time (so a request beyond them waits in
//! a FIFO queue and its round trip grows), seeded jitter, and throttling beyond a number of
//! requests in flight or during a window. Time is simulated in microseconds: no clock, no
//! network, the same trace for the same seed.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use super::*;

/// A simulated SQS.
#[derive(Debug, Clone, Copy)]
struct Server {
    /// Requests served at once; more wait.
    workers: usize,
    /// The round trip of a request that does not wait, in microseconds.
    latency: u64,
    /// Each service time is `latency` times 1 plus or minus up to this.
    jitter: f64,
    /// Requests beyond this many in flight are throttled.
    throttle_above: Option<usize>,
    /// Every request sent in this window (microseconds) is throttled.
    throttle_during: Option<(u64, u64)>,
    /// This fraction of requests fails (a 5xx) after a normal round trip.
    failures: f64,
    /// This fraction of requests stalls for five times the latency without holding a worker
    /// (a garbage collection, another process's burst on a shared machine).
    stalls: f64,
}

impl Server {
    fn queueing(workers: usize, latency_ms: u64) -> Server {
        Server {
            workers,
            latency: latency_ms * 1_000,
            jitter: 0.1,
            throttle_above: None,
            throttle_during: None,
            failures: 0.0,
            stalls: 0.0,
        }
    }

    /// A server that never queues: its round trip is the same at any concurrency.
    fn flat(latency_ms: u64) -> Server {
        Server::queueing(100_000, latency_ms)
    }

    /// Requests per second at full use.
    fn capacity(&self) -> f64 {
        self.workers as f64 * 1e6 / self.latency as f64
    }
}

/// What a simulation saw.
#[derive(Debug)]
struct Trace {
    /// (simulated microseconds, limit) after each observation.
    limits: Vec<(u64, usize)>,
    /// Requests SQS accepted, and when the last one was answered.
    ok: u64,
    throttled: u64,
    end: u64,
}

impl Trace {
    /// The limits observed from `from` (microseconds) on.
    fn after(&self, from: u64) -> impl Iterator<Item = usize> + '_ {
        self.limits
            .iter()
            .filter(move |(at, _)| *at >= from)
            .map(|(_, limit)| *limit)
    }

    fn limit_at(&self, at: u64) -> usize {
        self.limits
            .iter()
            .take_while(|(t, _)| *t <= at)
            .last()
            .map_or(0, |(_, limit)| *limit)
    }

    fn mean_after(&self, from: u64) -> f64 {
        let limits: Vec<usize> = self.after(from).collect();
        limits.iter().sum::<usize>() as f64 / limits.len().max(1) as f64
    }

    fn throughput(&self) -> f64 {
        self.ok as f64 * 1e6 / self.end.max(1) as f64
    }
}

/// An answer the simulated server will give, earliest first.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Answer {
    at: u64,
    sequence: usize,
    /// 0: accepted, 1: throttled, 2: failed.
    outcome: u8,
    rtt: u64,
    /// Requests in flight when it was sent.
    in_flight: usize,
}

/// Runs `requests` requests through `server` under a controller of `config`.
fn simulate(server: Server, config: Config, requests: usize, seed: u64) -> Trace {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut controller = Controller::new(config);
    // No more workers can be busy than requests can be in flight.
    let mut free_at = vec![0u64; server.workers.min(config.max).max(1)];
    let mut pending: BinaryHeap<Reverse<Answer>> = BinaryHeap::new();
    let (mut now, mut sent, mut in_flight) = (0u64, 0usize, 0usize);
    let mut trace = Trace {
        limits: Vec::new(),
        ok: 0,
        throttled: 0,
        end: 0,
    };
    loop {
        while in_flight < controller.limit() && sent < requests {
            in_flight += 1;
            sent += 1;
            let throttled = server.throttle_above.is_some_and(|n| in_flight > n)
                || server
                    .throttle_during
                    .is_some_and(|(from, to)| (from..to).contains(&now));
            let (answer, outcome) = if throttled {
                (now + server.latency / 4, 1)
            } else {
                let worker = (0..free_at.len())
                    .min_by_key(|w| free_at[*w])
                    .unwrap_or_default();
                let spread = 1.0 + server.jitter * (rng.f64() * 2.0 - 1.0);
                let service = (server.latency as f64 * spread) as u64;
                let finish = now.max(free_at[worker]) + service;
                free_at[worker] = finish;
                let finish = if rng.f64() < server.stalls {
                    finish + 5 * server.latency
                } else {
                    finish
                };
                let outcome = if rng.f64() < server.failures { 2 } else { 0 };
                (finish, outcome)
            };
            pending.push(Reverse(Answer {
                at: answer,
                sequence: sent,
                outcome,
                rtt: answer - now,
                in_flight,
            }));
        }
        let Some(Reverse(Answer {
            at,
            outcome,
            rtt,
            in_flight: sent_with,
            ..
        })) = pending.pop()
        else {
            break;
        };
        now = at;
        in_flight -= 1;
        let outcome = match outcome {
            0 => {
                trace.ok += 1;
                Outcome::Ok
            }
            1 => {
                trace.throttled += 1;
                Outcome::Throttled
            }
            _ => Outcome::Failed,
        };
        let limit = controller.observe(Observation {
            rtt: Duration::from_micros(rtt),
            outcome,
            in_flight: sent_with,
        });
        assert!(
            (1..=config.max).contains(&limit),
            "limit {limit} outside 1..={}",
            config.max
        );
        trace.limits.push((now, limit));
    }
    trace.end = now;
    trace
}

fn auto(max: usize) -> Config {
    Config::new(NonZeroUsize::new(max).unwrap_or(NonZeroUsize::MIN))
}

const SECOND: u64 = 1_000_000;
const SEEDS: [u64; 5] = [1, 2, 3, 17, 4242];

#[test]
fn converges_near_the_capacity_of_a_queueing_server() {
    for (workers, latency_ms) in [(16, 20), (4, 2), (32, 60)] {
        for seed in SEEDS {
            let server = Server::queueing(workers, latency_ms);
            let requests = (server.capacity() * 20.0) as usize;
            let trace = simulate(server, auto(64), requests, seed);
            let settled = trace.end / 4;
            // Below the floor, a slow round trip alone does not cut: the limit holds there.
            let c = workers.max(auto(64).floor) as f64;
            let (least, most) = trace
                .after(settled)
                .fold((usize::MAX, 0), |(l, m), x| (l.min(x), m.max(x)));
            let mean = trace.mean_after(settled);
            let label = format!("C {workers}, L {latency_ms} ms, seed {seed}");
            assert!(
                (c..=1.6 * c).contains(&mean),
                "{label}: mean limit {mean:.1}"
            );
            assert!(least as f64 >= 0.6 * c, "{label}: down to {least}");
            // At a small capacity one request more is a large step.
            assert!(
                most as f64 <= (1.8 * c).max(c + 4.0),
                "{label}: up to {most}"
            );
            let used = trace.throughput() / server.capacity();
            assert!(used >= 0.95, "{label}: {:.1}% of capacity", used * 100.0);
        }
    }
}

#[test]
fn noise_does_not_drive_it_below_the_capacity() {
    // LocalStack on a shared machine: a few milliseconds, half of it jitter, and stalls.
    for seed in SEEDS {
        let server = Server {
            jitter: 0.5,
            stalls: 0.05,
            ..Server::queueing(8, 3)
        };
        let requests = (server.capacity() * 20.0) as usize;
        let trace = simulate(server, auto(64), requests, seed);
        let mean = trace.mean_after(trace.end / 4);
        assert!(mean >= 8.0, "seed {seed}: mean limit {mean:.1}");
        let used = trace.throughput() / server.capacity();
        // A stalled request holds its slot five times as long, which the median round trip
        // does not show: some of the capacity goes to that.
        assert!(
            used >= 0.8,
            "seed {seed}: {:.1}% of capacity, mean limit {mean:.1}",
            used * 100.0
        );
    }
}

#[test]
fn climbs_to_the_max_on_a_flat_server() {
    for seed in SEEDS {
        for max in [1, 5, 64, 200] {
            let trace = simulate(Server::flat(20), auto(max), 20_000, seed);
            assert_eq!(trace.limits.last().map(|l| l.1), Some(max), "seed {seed}");
            assert!(trace.limits.iter().all(|(_, l)| *l <= max), "seed {seed}");
        }
    }
}

#[test]
fn backs_off_on_throttling_and_recovers() {
    for seed in SEEDS {
        let server = Server {
            throttle_during: Some((2 * SECOND, 4 * SECOND)),
            ..Server::queueing(32, 20)
        };
        let requests = (server.capacity() * 10.0) as usize;
        let trace = simulate(server, auto(64), requests, seed);
        let before = trace.limit_at(2 * SECOND);
        let during = trace.limit_at(4 * SECOND);
        let after = trace.mean_after(6 * SECOND);
        assert!(before >= 24, "seed {seed}: {before} before the throttling");
        assert!(
            during <= 2,
            "seed {seed}: {during} at the end of the throttling"
        );
        assert!(
            (32.0..=1.6 * 32.0).contains(&after),
            "seed {seed}: {after:.1} after it"
        );
        assert!(trace.throttled > 0, "seed {seed}");
    }
}

#[test]
fn stays_near_the_point_where_throttling_starts() {
    for seed in SEEDS {
        let server = Server {
            throttle_above: Some(12),
            ..Server::queueing(64, 20)
        };
        let trace = simulate(server, auto(64), 50_000, seed);
        let mean = trace.mean_after(trace.end / 4);
        assert!(
            (6.0..=14.0).contains(&mean),
            "seed {seed}: mean limit {mean:.1}"
        );
        let throttled = trace.throttled as f64 / (trace.ok + trace.throttled) as f64;
        // Each climb past the threshold meets a few throttled answers before the cut.
        assert!(
            throttled < 0.1,
            "seed {seed}: {:.1}% throttled",
            throttled * 100.0
        );
    }
}

#[test]
fn a_slow_round_trip_alone_stops_at_the_floor_and_throttling_goes_below() {
    for seed in SEEDS {
        // Two workers: past 2 in flight every request waits, but only the round trip says so.
        let server = Server::queueing(2, 2);
        let requests = (server.capacity() * 20.0) as usize;
        let trace = simulate(server, auto(64), requests, seed);
        let settled: Vec<usize> = trace.after(trace.end / 4).collect();
        assert!(
            settled.iter().all(|limit| *limit >= 8),
            "seed {seed}: down to {:?}",
            settled.iter().min()
        );
        // A server that throttles past 3 in flight takes the limit under the floor.
        let server = Server {
            throttle_above: Some(3),
            ..Server::queueing(64, 20)
        };
        let trace = simulate(server, auto(64), 20_000, seed);
        let mean = trace.mean_after(trace.end / 4);
        assert!(mean <= 4.0, "seed {seed}: mean limit {mean:.1}");
    }
}

#[test]
fn keeps_sending_through_random_failures() {
    for seed in SEEDS {
        let server = Server {
            failures: 0.2,
            ..Server::queueing(32, 20)
        };
        let trace = simulate(server, auto(64), 20_000, seed);
        let mean = trace.mean_after(trace.end / 4);
        assert!(mean >= 2.0, "seed {seed}: mean limit {mean:.1}");
    }
}

#[test]
fn never_leaves_its_bounds() {
    let servers = [
        Server::queueing(1, 1),
        Server::queueing(3, 50),
        Server::flat(5),
        Server {
            throttle_above: Some(2),
            ..Server::queueing(8, 10)
        },
        Server {
            failures: 0.5,
            ..Server::queueing(8, 10)
        },
    ];
    for server in servers {
        for max in [1, 2, 7, 64] {
            for seed in SEEDS {
                // `simulate` asserts the bounds after every observation.
                let trace = simulate(server, auto(max), 3_000, seed);
                assert!(!trace.limits.is_empty());
            }
        }
    }
}

#[test]
fn does_not_raise_a_limit_it_does_not_use() {
    let mut controller = Controller::new(auto(64));
    for _ in 0..1_000 {
        controller.observe(Observation {
            rtt: Duration::from_millis(20),
            outcome: Outcome::Ok,
            in_flight: 3,
        });
    }
    assert_eq!(controller.limit(), 8);
    assert_eq!(controller.peak(), 8);
    assert_eq!(controller.baseline(), Some(Duration::from_millis(20)));
}

#[test]
fn follows_a_path_that_became_slower() {
    // The round trip triples for good whatever the concurrency: after one cut, the window at
    // half the limit is as slow, which no queue of ours explains; the slower round trip becomes
    // the baseline and the limit climbs back.
    let mut controller = Controller::new(auto(64));
    let mut observe = |ms: u64, n: usize| {
        for _ in 0..n {
            let limit = controller.limit();
            controller.observe(Observation {
                rtt: Duration::from_millis(ms),
                outcome: Outcome::Ok,
                in_flight: limit,
            });
        }
        controller.limit()
    };
    assert_eq!(observe(20, 2_000), 64);
    // Two slow windows in a row: one alone may be noise.
    assert_eq!(observe(60, 64), 64);
    assert_eq!(observe(60, 64), 32);
    assert_eq!(observe(60, 20_000), 64);
    assert_eq!(controller.baseline(), Some(Duration::from_millis(60)));
}

#[test]
fn parses_max_in_flight() {
    let check = |input: &str, expected: Result<Concurrency, ()>| {
        assert_eq!(
            input.parse::<Concurrency>().map_err(drop),
            expected,
            "{input}"
        );
    };
    let fixed = |n| {
        Ok(Concurrency::Fixed(
            NonZeroUsize::new(n).unwrap_or(NonZeroUsize::MIN),
        ))
    };
    check("auto", Ok(Concurrency::AUTO));
    check("8", fixed(8));
    check("1", fixed(1));
    check("0", Err(()));
    check("-1", Err(()));
    check("Auto", Err(()));
    check("", Err(()));
    assert_eq!(Concurrency::AUTO.max(), DEFAULT_MAX);
    assert_eq!(Concurrency::AUTO.to_string(), "auto");
}
