//! Counters and histograms of what the forwarder did, shared by the summary of `send` and the
//! Prometheus endpoint of `serve`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Which counter of a [`Metrics`] a line of the exposition shows.
type Counter = fn(&Metrics) -> &AtomicU64;

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
        Metrics::exposition(&[(None, self)])
    }

    /// The Prometheus text exposition of several sets of counters, each family once, each set's
    /// samples labelled `destination="NAME"` when it has a name.
    pub fn exposition(sets: &[(Option<&str>, &Metrics)]) -> String {
        let mut out = String::new();
        let counters: [(&str, &str, Counter); 7] = [
            ("events_received", "Events received", |m| &m.received),
            ("events_sent", "Events accepted by SQS", |m| &m.sent),
            (
                "events_sent_structured",
                "Events accepted by SQS in structured mode because binary mode could not carry them",
                |m| &m.sent_structured,
            ),
            ("events_refused", "Events refused before sending", |m| {
                &m.refused
            }),
            ("events_failed", "Events not delivered after retries", |m| {
                &m.failed
            }),
            (
                "events_retried",
                "Entries sent again after a transient failure",
                |m| &m.retried,
            ),
            ("sqs_requests", "SendMessageBatch requests", |m| &m.requests),
        ];
        for (name, help, counter) in counters {
            family(
                &mut out,
                &format!("{name}_total"),
                "counter",
                help,
                sets,
                counter,
            );
        }
        let gauges: [(&str, &str, Counter); 3] = [
            (
                "in_flight_limit",
                "The limit of SendMessageBatch requests in flight",
                |m| &m.in_flight_limit,
            ),
            (
                "in_flight_limit_peak",
                "The highest limit of requests in flight so far",
                |m| &m.peak_in_flight_limit,
            ),
            (
                "sqs_requests_in_flight",
                "SendMessageBatch requests in flight, retries included",
                |m| &m.in_flight,
            ),
        ];
        for (name, help, gauge) in gauges {
            family(&mut out, name, "gauge", help, sets, gauge);
        }
        let baselines: Vec<(Option<&str>, u64)> = sets
            .iter()
            .map(|(destination, metrics)| {
                (*destination, Metrics::get(&metrics.rtt_baseline_micros))
            })
            .filter(|(_, micros)| *micros > 0)
            .collect();
        if !baselines.is_empty() {
            let _ = writeln!(
                out,
                "# HELP forwarder_sqs_rtt_baseline_seconds The round trip the adaptive limit takes for an SQS that is not queueing.\n# TYPE forwarder_sqs_rtt_baseline_seconds gauge"
            );
            for (destination, micros) in baselines {
                let labels = labels(destination, None);
                let _ = writeln!(
                    out,
                    "forwarder_sqs_rtt_baseline_seconds{labels} {}",
                    micros as f64 / 1e6
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP forwarder_batch_size Entries per SendMessageBatch request."
        );
        let _ = writeln!(out, "# TYPE forwarder_batch_size histogram");
        for (destination, metrics) in sets {
            metrics.batch_histogram(&mut out, *destination);
        }
        let _ = writeln!(
            out,
            "# HELP forwarder_sqs_request_seconds SQS request latency."
        );
        let _ = writeln!(out, "# TYPE forwarder_sqs_request_seconds histogram");
        for (destination, metrics) in sets {
            metrics.latency_histogram(&mut out, *destination);
        }
        out
    }

    fn batch_histogram(&self, out: &mut String, destination: Option<&str>) {
        let mut cumulative = 0;
        let mut sum = 0;
        for (i, bucket) in self.batch_sizes.iter().enumerate() {
            let n = Metrics::get(bucket);
            cumulative += n;
            sum += n * (i as u64 + 1);
            let le = (i + 1).to_string();
            let labels = labels(destination, Some(&le));
            let _ = writeln!(out, "forwarder_batch_size_bucket{labels} {cumulative}");
        }
        let (inf, plain) = (labels(destination, Some("+Inf")), labels(destination, None));
        let _ = writeln!(out, "forwarder_batch_size_bucket{inf} {cumulative}");
        let _ = writeln!(
            out,
            "forwarder_batch_size_sum{plain} {sum}\nforwarder_batch_size_count{plain} {cumulative}"
        );
    }

    fn latency_histogram(&self, out: &mut String, destination: Option<&str>) {
        for (bound, bucket) in LATENCY_BOUNDS.iter().zip(&self.latency_buckets) {
            let labels = labels(destination, Some(&bound.to_string()));
            let _ = writeln!(
                out,
                "forwarder_sqs_request_seconds_bucket{labels} {}",
                Metrics::get(bucket)
            );
        }
        let count = Metrics::get(&self.latency_count);
        let (inf, plain) = (labels(destination, Some("+Inf")), labels(destination, None));
        let _ = writeln!(out, "forwarder_sqs_request_seconds_bucket{inf} {count}");
        let sum = Metrics::get(&self.latency_micros) as f64 / 1e6;
        let _ = writeln!(
            out,
            "forwarder_sqs_request_seconds_sum{plain} {sum}\nforwarder_sqs_request_seconds_count{plain} {count}"
        );
    }
}

/// One family of samples, `forwarder_NAME`, with its help and type, a sample for each set.
fn family(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    sets: &[(Option<&str>, &Metrics)],
    read: Counter,
) {
    let _ = writeln!(
        out,
        "# HELP forwarder_{name} {help}.\n# TYPE forwarder_{name} {kind}"
    );
    for (destination, metrics) in sets {
        let labels = labels(*destination, None);
        let _ = writeln!(
            out,
            "forwarder_{name}{labels} {}",
            Metrics::get(read(metrics))
        );
    }
}

/// `{destination="NAME",le="BOUND"}`, or as much of it as applies (destination names need no
/// escaping: they are checked to be `A-Z a-z 0-9 . _ -`).
fn labels(destination: Option<&str>, le: Option<&str>) -> String {
    let parts: Vec<String> = destination
        .map(|d| format!("destination=\"{d}\""))
        .into_iter()
        .chain(le.map(|le| format!("le=\"{le}\"")))
        .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", parts.join(","))
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

    #[test]
    fn each_destination_gets_its_label_and_each_family_is_written_once() {
        let (a, b) = (Metrics::default(), Metrics::default());
        Metrics::inc(&a.sent);
        b.record_request(2, 100, Duration::from_millis(1));
        let text = Metrics::exposition(&[(Some("acme"), &a), (Some("globex"), &b)]);
        assert!(
            text.contains("forwarder_events_sent_total{destination=\"acme\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("forwarder_events_sent_total{destination=\"globex\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("forwarder_batch_size_bucket{destination=\"globex\",le=\"2\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("forwarder_sqs_request_seconds_count{destination=\"globex\"} 1\n"),
            "{text}"
        );
        assert_eq!(
            text.matches("# TYPE forwarder_events_sent_total").count(),
            1
        );
    }
}
