//! How many `SendMessageBatch` requests one [`Forwarder`](crate::pipeline::Forwarder) keeps in
//! flight: a fixed number, or the adaptive [`Controller`].
//!
//! The controller is pure: it is told, for each attempt, how long the round trip took, how it
//! ended and how many requests were in flight when it was sent, and it answers with the limit.
//! It reads no clock and knows no SDK, so it is tested on a simulated server.
//!
//! The idea is the one behind TCP's congestion control, Vector's adaptive request concurrency
//! and Netflix's concurrency-limits: more requests in flight help as long as the round trip
//! stays near what it is when the server is not queueing; once it climbs, the extra requests only
//! wait in the server's queue. Observations are grouped into windows of about one round trip
//! (as many observations as the limit, at least [`MIN_WINDOW`]):
//!
//! - throttling (or a 503) cuts the limit at once by [`Config::throttle_decrease`] (x0.5); a
//!   window in which most attempts failed otherwise (a 500, a timeout, a reset) by
//!   [`Config::failure_decrease`] (x0.9), and a window with any failure does not raise it;
//! - two windows in a row whose median round trip is over [`Config::tolerance`] (1.5) times
//!   the baseline cut it (one alone may be noise: a stalled answer, another process's burst) by the gradient
//!   `baseline / rtt` times 0.9, clamped to x0.5..x0.9: on a server whose round trip grows with
//!   its queue, that lands just under its capacity;
//! - unless its throughput by Little's law (requests in flight over the round trip) beats the
//!   history's best by 5%: then more requests still help (a server whose round trip grows
//!   while its throughput does too, as LocalStack's does up to about 8), and the limit rises;
//! - unless it had clearly fewer requests in flight (by the tolerance) than a window of the
//!   history that was fast: a queue of ours cannot explain that, a slower path can, so it
//!   becomes the baseline and the limit stays;
//! - a clean window in which the limit was reached (a request was sent with the limit in
//!   flight) raises it: doubled until the first cut (slow start), then by one;
//! - after a cut, as many observations as the old limit are ignored: they answer requests sent
//!   under it;
//! - a slow round trip alone never takes the limit below [`Config::floor`] (8, the fixed default
//!   of old): on a server bound by its own CPU, such as LocalStack, a request costs the server
//!   less when others wait beside it (3.3 ms of LocalStack's CPU per request at 64 in flight,
//!   3.9 ms at 2, in `cargo xtask bench`), which no round trip shows, so fewer than 8 lost a
//!   fifth of the throughput there; a server that is really overloaded throttles or fails, and
//!   those cut to 1.
//!
//! The baseline is the least median round trip of the last [`Config::history`] windows, a
//! moving minimum. The limit stays within `1..=max`.

use std::collections::VecDeque;
use std::fmt;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::time::Duration;

/// The greatest limit of `--max-in-flight auto`.
pub const DEFAULT_MAX: usize = 64;

/// The fewest observations a window holds, so that a small limit does not decide on one round
/// trip.
pub const MIN_WINDOW: usize = 8;

/// Requests in flight: `--max-in-flight auto` or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    /// Exactly this many.
    Fixed(NonZeroUsize),
    /// Chosen by the [`Controller`], at most `max`.
    Adaptive {
        /// The greatest limit.
        max: NonZeroUsize,
    },
}

impl Concurrency {
    /// The adaptive default, at most [`DEFAULT_MAX`].
    pub const AUTO: Concurrency = Concurrency::Adaptive {
        max: match NonZeroUsize::new(DEFAULT_MAX) {
            Some(max) => max,
            None => NonZeroUsize::MIN,
        },
    };

    /// One request at a time.
    pub const ONE: Concurrency = Concurrency::Fixed(NonZeroUsize::MIN);

    /// The most requests this can ever keep in flight.
    pub fn max(self) -> usize {
        match self {
            Concurrency::Fixed(n) | Concurrency::Adaptive { max: n } => n.get(),
        }
    }
}

impl Default for Concurrency {
    fn default() -> Self {
        Concurrency::AUTO
    }
}

impl fmt::Display for Concurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Concurrency::Fixed(n) => write!(f, "{n}"),
            Concurrency::Adaptive { .. } => f.write_str("auto"),
        }
    }
}

/// A `--max-in-flight` that is neither `auto` nor a positive number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is neither `auto` nor a number of requests (1 or more)")]
pub struct ParseConcurrencyError(String);

impl FromStr for Concurrency {
    type Err = ParseConcurrencyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "auto" {
            return Ok(Concurrency::AUTO);
        }
        s.parse::<NonZeroUsize>()
            .map(Concurrency::Fixed)
            .map_err(|_| ParseConcurrencyError(s.to_owned()))
    }
}

/// How an attempt ended, as the controller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// SQS answered (entries it refused as the sender's fault count as answered).
    Ok,
    /// SQS throttled the request or some of its entries, or answered 429 or 503.
    Throttled,
    /// Any other failure worth a retry: a 5xx, a timeout, a reset connection.
    Failed,
}

/// One attempt's round trip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// From sending the request to its answer (or failure).
    pub rtt: Duration,
    /// How it ended.
    pub outcome: Outcome,
    /// Requests in flight when it was sent, itself included.
    pub in_flight: usize,
}

/// The controller's parameters; [`Config::new`] gives the defaults for a maximum.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Config {
    /// The limit to start from.
    pub initial: usize,
    /// The greatest limit.
    pub max: usize,
    /// A window whose median round trip exceeds the baseline by this factor is congested.
    pub tolerance: f64,
    /// The factor a window with throttling multiplies the limit by.
    pub throttle_decrease: f64,
    /// The factor a window in which most attempts failed (not throttled) multiplies the limit
    /// by.
    pub failure_decrease: f64,
    /// The least and greatest factor a congested window multiplies the limit by: the gradient
    /// `baseline / rtt` times the greatest, so that the cut lands a little below the point
    /// where the queue began and the baseline is measured again there.
    pub congestion_decrease: (f64, f64),
    /// Windows whose median round trips the baseline is the least of: longer than one climb from
    /// the capacity to `tolerance` times it, so that the baseline is never a queueing window.
    pub history: usize,
    /// The least limit a slow round trip alone cuts to; throttling and failures cut below it.
    pub floor: usize,
}

impl Config {
    /// The defaults, with `max` as the greatest limit.
    pub fn new(max: NonZeroUsize) -> Config {
        Config {
            initial: 8.min(max.get()),
            max: max.get(),
            tolerance: 1.5,
            throttle_decrease: 0.5,
            failure_decrease: 0.9,
            congestion_decrease: (0.5, 0.9),
            history: max.get().max(16),
            floor: 8.min(max.get()),
        }
    }
}

/// The adaptive limit; see the module documentation.
#[derive(Debug, Clone)]
pub struct Controller {
    config: Config,
    limit: usize,
    peak: usize,
    slow_start: bool,
    /// Observations still to ignore after a cut: the answers to requests sent under the old
    /// limit.
    cooldown: usize,
    /// The last window was slow: one more like it, and the limit is cut.
    congested: bool,
    window: Window,
    /// The last windows, newest last.
    history: VecDeque<Past>,
}

#[derive(Debug, Clone, Default)]
struct Window {
    observations: usize,
    /// The round trips of its answered attempts.
    rtts: Vec<Duration>,
    /// Its attempts that failed (not throttled).
    failed: usize,
    /// The most requests in flight any of its requests was sent with.
    peak_in_flight: usize,
    /// The sum of the requests in flight each of its requests was sent with.
    in_flight_sum: usize,
}

/// A window that ended with answers.
#[derive(Debug, Clone, Copy)]
struct Past {
    /// Its median round trip.
    rtt: Duration,
    /// The mean number of requests in flight its requests were sent with.
    in_flight: f64,
}

impl Past {
    /// Requests answered per second, by Little's law: in flight over the round trip.
    fn throughput(&self) -> f64 {
        self.in_flight / self.rtt.as_secs_f64().max(1e-9)
    }
}

/// A window whose throughput beats the history's best by this fraction is still gaining from
/// more requests in flight, however its round trip grew.
const GAINING: f64 = 0.05;

impl Controller {
    /// A controller at `config.initial`, within `1..=config.max`.
    pub fn new(config: Config) -> Controller {
        let max = config.max.max(1);
        let limit = config.initial.clamp(1, max);
        Controller {
            config: Config { max, ..config },
            limit,
            peak: limit,
            slow_start: true,
            cooldown: 0,
            congested: false,
            window: Window::default(),
            history: VecDeque::new(),
        }
    }

    /// The current limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The highest limit so far.
    pub fn peak(&self) -> usize {
        self.peak
    }

    /// The round trip the controller takes for "not queueing", once a window has ended.
    pub fn baseline(&self) -> Option<Duration> {
        self.best().map(|(least, _)| least)
    }

    /// Takes one observation and returns the limit.
    pub fn observe(&mut self, observation: Observation) -> usize {
        if self.cooldown > 0 {
            self.cooldown -= 1;
            return self.limit;
        }
        let window = &mut self.window;
        window.observations += 1;
        window.peak_in_flight = window.peak_in_flight.max(observation.in_flight);
        window.in_flight_sum += observation.in_flight;
        let cut = match observation.outcome {
            Outcome::Ok => {
                window.rtts.push(observation.rtt);
                None
            }
            Outcome::Throttled => Some(self.config.throttle_decrease),
            Outcome::Failed => {
                window.failed += 1;
                None
            }
        };
        let full = window.observations >= self.limit.max(MIN_WINDOW);
        match cut {
            // Throttling cuts at once; the window is forgotten.
            Some(factor) => {
                self.window = Window::default();
                self.cut(factor);
            }
            None if full => self.end_window(),
            None => {}
        }
        self.limit
    }

    /// The least median round trip of the history, and the most requests in flight of a window
    /// that was that fast (within the tolerance).
    fn best(&self) -> Option<(Duration, f64)> {
        let least = self.history.iter().map(|past| past.rtt).min()?;
        let fast = least.mul_f64(self.config.tolerance);
        let most = self
            .history
            .iter()
            .filter(|past| past.rtt <= fast)
            .map(|past| past.in_flight)
            .fold(0.0, f64::max);
        Some((least, most))
    }

    fn end_window(&mut self) {
        let mut window = std::mem::take(&mut self.window);
        let best = self.best();
        if window.failed * 2 > window.observations {
            self.cut(self.config.failure_decrease);
            return;
        }
        if window.rtts.is_empty() {
            return;
        }
        // The median, not the mean: one stalled answer does not make a window slow.
        let middle = window.rtts.len() / 2;
        let rtt = *window.rtts.select_nth_unstable(middle).1;
        let in_flight = window.in_flight_sum as f64 / window.observations.max(1) as f64;
        let past = Past { rtt, in_flight };
        // The best throughput so far, and the requests in flight it took.
        let fastest = self
            .history
            .iter()
            .copied()
            .max_by(|a, b| a.throughput().total_cmp(&b.throughput()));
        let gaining = fastest.is_none_or(|f| past.throughput() > f.throughput() * (1.0 + GAINING));
        self.history.push_back(past);
        while self.history.len() > self.config.history.max(1) {
            self.history.pop_front();
        }
        let was_congested = std::mem::take(&mut self.congested);
        match best {
            Some((least, fast_at))
                if rtt.as_secs_f64() > least.as_secs_f64() * self.config.tolerance && !gaining =>
            {
                if in_flight * self.config.tolerance <= fast_at {
                    // Slower with clearly fewer requests in flight than a window that was fast:
                    // not our queue but a slower path. It becomes the baseline.
                    self.history.clear();
                    self.history.push_back(Past { rtt, in_flight });
                } else if was_congested {
                    let (lowest, highest) = self.config.congestion_decrease;
                    let gradient = least.as_secs_f64() / rtt.as_secs_f64();
                    if self.limit > self.config.floor {
                        self.cut((gradient * highest).clamp(lowest, highest));
                        self.limit = self.limit.max(self.config.floor);
                    }
                } else {
                    // A slow window alone may be noise; the next one decides.
                    self.congested = true;
                }
            }
            // A window with failures holds the limit.
            _ if window.peak_in_flight >= self.limit && window.failed == 0 => {
                let raised = if self.slow_start {
                    self.limit * 2
                } else {
                    self.limit + 1
                };
                self.limit = raised.min(self.config.max);
                self.peak = self.peak.max(self.limit);
            }
            _ => {}
        }
    }

    /// Multiplies the limit by `factor`, taking at least one off (and staying at 1 or more).
    fn cut(&mut self, factor: f64) {
        self.slow_start = false;
        self.cooldown = self.limit;
        let cut = (self.limit as f64 * factor).round() as usize;
        self.limit = cut.clamp(1, self.limit.saturating_sub(1).max(1));
    }
}

#[cfg(test)]
mod tests;
