//! Counters and histograms of what the forwarder did, shared by the summary of `send` and the
//! Prometheus endpoint of `serve`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the SQS request latency buckets, in seconds.
const LATENCY_BOUNDS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// What happened so far. All counters only grow; the gauges say how things are now.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events handed to the forwarder (or received over HTTP).
    pub received: AtomicU64,
    /// Events SQS accepted.
    pub sent: AtomicU64,
    /// Of those, events sent in structured mode because binary mode could not carry them.
    pub sent_structured: AtomicU64,
    /// Events refused before sending (invalid, too large).
    pub refused: AtomicU64,
    /// Events that could not be delivered after the retries.
    pub failed: AtomicU64,
    /// Entries or requests sent again.
    pub retried: AtomicU64,
    /// `SendMessageBatch` requests made.
    pub requests: AtomicU64,
    /// Bytes of bodies and attributes sent (accepted or not).
    pub bytes: AtomicU64,
    /// 64 KiB billing units of the requests made.
    pub billing_units: AtomicU64,
    /// The limit of requests in flight (a gauge).
    pub in_flight_limit: AtomicU64,
    /// The highest that limit has been.
    pub peak_in_flight_limit: AtomicU64,
    /// Requests in flight, their retries included (a gauge).
    pub in_flight: AtomicU64,
    /// The round trip the adaptive limit takes for "SQS is not queueing", in microseconds (0:
    /// not known yet, or a fixed limit).
    rtt_baseline_micros: AtomicU64,
    batch_sizes: [AtomicU64; 10],
    latency_buckets: [AtomicU64; LATENCY_BOUNDS.len()],
    latency_count: AtomicU64,
    latency_micros: AtomicU64,
}

impl Metrics {
    /// Adds one to a counter.
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Records one request of `entries` messages and `bytes` payload bytes that took `latency`.
    pub fn record_request(&self, entries: usize, bytes: usize, latency: Duration) {
        Metrics::inc(&self.requests);
        self.bytes.fetch_add(bytes as u64, Ordering::Relaxed);
        self.billing_units
            .fetch_add(billing_units(bytes), Ordering::Relaxed);
        if let Some(bucket) = self.batch_sizes.get(entries.saturating_sub(1)) {
            Metrics::inc(bucket);
        }
        let seconds = latency.as_secs_f64();
        for (bound, bucket) in LATENCY_BOUNDS.iter().zip(&self.latency_buckets) {
            if seconds <= *bound {
                Metrics::inc(bucket);
            }
        }
        Metrics::inc(&self.latency_count);
        self.latency_micros
            .fetch_add(latency.as_micros() as u64, Ordering::Relaxed);
    }

    /// Records the limit of requests in flight, its peak, the requests in flight and the
    /// adaptive limit's baseline round trip.
    pub fn record_concurrency(
        &self,
        limit: usize,
        peak: usize,
        in_flight: usize,
        baseline: Option<Duration>,
    ) {
        self.in_flight_limit.store(limit as u64, Ordering::Relaxed);
        self.peak_in_flight_limit
            .fetch_max(peak as u64, Ordering::Relaxed);
        self.in_flight.store(in_flight as u64, Ordering::Relaxed);
        self.rtt_baseline_micros.store(
            baseline.map_or(0, |b| b.as_micros() as u64),
            Ordering::Relaxed,
        );
    }

    /// The Prometheus text exposition of everything.
    pub fn prometheus(&self) -> String {
        let mut out = String::new();
        let counters = [
            ("events_received", "Events received", &self.received),
            ("events_sent", "Events accepted by SQS", &self.sent),
            (
                "events_sent_structured",
                "Events accepted by SQS in structured mode because binary mode could not carry them",
                &self.sent_structured,
            ),
            (
                "events_refused",
                "Events refused before sending",
                &self.refused,
            ),
            (
                "events_failed",
                "Events not delivered after retries",
                &self.failed,
            ),
            (
                "events_retried",
                "Entries sent again after a transient failure",
                &self.retried,
            ),
            ("sqs_requests", "SendMessageBatch requests", &self.requests),
        ];
        for (name, help, counter) in counters {
            let _ = writeln!(
                out,
                "# HELP forwarder_{name}_total {help}.\n# TYPE forwarder_{name}_total counter"
            );
            let _ = writeln!(out, "forwarder_{name}_total {}", Metrics::get(counter));
        }
        let gauges = [
            (
                "in_flight_limit",
                "The limit of SendMessageBatch requests in flight",
                &self.in_flight_limit,
            ),
            (
                "in_flight_limit_peak",
                "The highest limit of requests in flight so far",
                &self.peak_in_flight_limit,
            ),
            (
                "sqs_requests_in_flight",
                "SendMessageBatch requests in flight, retries included",
                &self.in_flight,
            ),
        ];
        for (name, help, gauge) in gauges {
            let _ = writeln!(
                out,
                "# HELP forwarder_{name} {help}.\n# TYPE forwarder_{name} gauge"
            );
            let _ = writeln!(out, "forwarder_{name} {}", Metrics::get(gauge));
        }
        let baseline = Metrics::get(&self.rtt_baseline_micros);
        if baseline > 0 {
            let _ = writeln!(
                out,
                "# HELP forwarder_sqs_rtt_baseline_seconds The round trip the adaptive limit takes for an SQS that is not queueing.\n# TYPE forwarder_sqs_rtt_baseline_seconds gauge"
            );
            let _ = writeln!(
                out,
                "forwarder_sqs_rtt_baseline_seconds {}",
                baseline as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "# HELP forwarder_batch_size Entries per SendMessageBatch request."
        );
        let _ = writeln!(out, "# TYPE forwarder_batch_size histogram");
        let mut cumulative = 0;
        let mut sum = 0;
        for (i, bucket) in self.batch_sizes.iter().enumerate() {
            let n = Metrics::get(bucket);
            cumulative += n;
            sum += n * (i as u64 + 1);
            let _ = writeln!(
                out,
                "forwarder_batch_size_bucket{{le=\"{}\"}} {cumulative}",
                i + 1
            );
        }
        let _ = writeln!(
            out,
            "forwarder_batch_size_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "forwarder_batch_size_sum {sum}\nforwarder_batch_size_count {cumulative}"
        );
        let _ = writeln!(
            out,
            "# HELP forwarder_sqs_request_seconds SQS request latency."
        );
        let _ = writeln!(out, "# TYPE forwarder_sqs_request_seconds histogram");
        for (bound, bucket) in LATENCY_BOUNDS.iter().zip(&self.latency_buckets) {
            let _ = writeln!(
                out,
                "forwarder_sqs_request_seconds_bucket{{le=\"{bound}\"}} {}",
                Metrics::get(bucket)
            );
        }
        let count = Metrics::get(&self.latency_count);
        let _ = writeln!(
            out,
            "forwarder_sqs_request_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = Metrics::get(&self.latency_micros) as f64 / 1e6;
        let _ = writeln!(
            out,
            "forwarder_sqs_request_seconds_sum {sum}\nforwarder_sqs_request_seconds_count {count}"
        );
        out
    }
}

/// SQS bills each 64 KiB chunk of a request as one request.
pub fn billing_units(payload_bytes: usize) -> u64 {
    (payload_bytes.max(1) as u64).div_ceil(64 * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_units_are_64_kib_chunks() {
        for (bytes, units) in [(0, 1), (300, 1), (65_536, 1), (65_537, 2), (1_048_576, 16)] {
            assert_eq!(billing_units(bytes), units, "{bytes}");
        }
    }

    #[test]
    fn prometheus_text_has_counters_and_histograms() {
        let metrics = Metrics::default();
        Metrics::inc(&metrics.sent);
        metrics.record_request(10, 3_000, Duration::from_millis(20));
        metrics.record_request(3, 900, Duration::from_millis(2));
        metrics.record_concurrency(12, 20, 3, Some(Duration::from_millis(4)));
        metrics.record_concurrency(11, 11, 2, Some(Duration::from_millis(4)));
        let text = metrics.prometheus();
        for line in [
            "forwarder_in_flight_limit 11",
            "forwarder_in_flight_limit_peak 20",
            "forwarder_sqs_requests_in_flight 2",
            "forwarder_sqs_rtt_baseline_seconds 0.004",
            "forwarder_events_sent_total 1",
            "forwarder_sqs_requests_total 2",
            "forwarder_batch_size_bucket{le=\"3\"} 1",
            "forwarder_batch_size_bucket{le=\"10\"} 2",
            "forwarder_batch_size_sum 13",
            "forwarder_sqs_request_seconds_bucket{le=\"0.005\"} 1",
            "forwarder_sqs_request_seconds_bucket{le=\"0.025\"} 2",
        ] {
            assert!(text.contains(&format!("{line}\n")), "{line}: {text}");
        }
    }
}
