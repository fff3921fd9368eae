//! What the runs measured, as the report reads it: samples, rows of repetitions, workloads and
//! the memory run.

use super::measure::Usage;
use super::settings::Plan;
use super::workload::Size;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Ceiling,
    Send,
    Serve,
    PerEventConcurrent,
    PerEventSequential,
}

impl Method {
    pub(super) const ALL: [Method; 5] = [
        Method::Ceiling,
        Method::Send,
        Method::Serve,
        Method::PerEventConcurrent,
        Method::PerEventSequential,
    ];

    pub(super) fn key(self) -> &'static str {
        match self {
            Method::Ceiling => "ceiling",
            Method::Send => "send",
            Method::Serve => "serve",
            Method::PerEventConcurrent => "perEventConcurrent",
            Method::PerEventSequential => "perEventSequential",
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Method::Ceiling => "ceiling (SDK, full batches)",
            Method::Send => "forwarder send",
            Method::Serve => "forwarder serve (HTTP)",
            Method::PerEventConcurrent => "1 request/event, concurrent",
            Method::PerEventSequential => "1 request/event, sequential",
        }
    }
}

/// One measured run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Sample {
    /// The time the throughput is computed over: `send`'s whole process, or the load
    /// generator's first request to last answer.
    pub(super) seconds: f64,
    pub(super) sent: u64,
    pub(super) failed: u64,
    pub(super) requests: Option<u64>,
    pub(super) billing_units: Option<u64>,
    /// The forwarder's process (`send`, `serve`), or the SDK client's.
    pub(super) usage: Usage,
    /// The CPU seconds of the HTTP client in front of `serve`.
    pub(super) client_cpu: Option<f64>,
    /// LocalStack's CPU seconds over the run.
    pub(super) server_cpu: Option<f64>,
    /// Busy CPU seconds of the whole machine over the run, and the run's wall time.
    pub(super) machine_busy: Option<f64>,
    pub(super) window: f64,
    pub(super) p50_ms: Option<f64>,
    pub(super) p99_ms: Option<f64>,
    /// Messages the queue held afterwards, to check that what was reported sent arrived.
    pub(super) in_queue: Option<u64>,
    /// `forwarder send`'s limit of requests in flight at the end, and its peak.
    pub(super) in_flight_limit: Option<(u64, u64)>,
}

/// The repetitions of one method on one workload.
#[derive(Debug)]
pub(crate) struct Row {
    pub(super) method: Method,
    /// Requests in flight; 0 for `forwarder send`, whose limit is adaptive.
    pub(super) concurrency: usize,
    pub(super) samples: Vec<Sample>,
}

/// Everything measured on one workload at one round trip.
#[derive(Debug)]
pub(crate) struct WorkloadResult {
    pub(super) plan: Plan,
    /// The round trip added in front of LocalStack, in milliseconds.
    pub(super) rtt_ms: u64,
    pub(super) file_bytes: u64,
    pub(super) rows: Vec<Row>,
    /// Events per second at each concurrency of the sweeps: the ceiling's, one per
    /// repetition, and one request per event's, once.
    pub(super) ceiling_sweep: Vec<(usize, Vec<f64>)>,
    pub(super) per_event_sweep: Vec<(usize, Vec<f64>)>,
}

/// The memory run: gigabytes through `forwarder send` from a pipe.
#[derive(Debug)]
pub(crate) struct MemoryResult {
    pub(super) size: Size,
    pub(super) bytes: u64,
    pub(super) events: u64,
    pub(super) sample: Sample,
    /// Peak RSS once a tenth of the input was through, and at the end.
    pub(super) early_peak_rss: u64,
    /// (seconds, bytes fed, RSS) along the run.
    pub(super) timeline: Vec<(f64, u64, u64)>,
    /// Bytes fed when the forwarder was stopped for going over [`MEMORY_RUN_CAP`](super::memory::MEMORY_RUN_CAP).
    pub(super) stopped_at: Option<u64>,
}
