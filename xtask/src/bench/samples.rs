//! The figures the measured programs print: the load generator's JSON line and
//! `forwarder send --summary-json`.

use anyhow::{Context, Result};
use serde_json::Value;

use super::measure;
use super::results::Sample;

/// The figures the load generator printed.
pub(super) fn load_sample(stdout: &str) -> Result<Sample> {
    let value: Value = serde_json::from_str(stdout.trim())
        .with_context(|| format!("sqs_load printed `{}`", stdout.trim()))?;
    if let Some(error) = value["firstError"].as_str() {
        eprintln!("bench: warning: {error}");
    }
    Ok(Sample {
        seconds: value["seconds"].as_f64().context("no seconds")?,
        sent: value["sent"].as_u64().unwrap_or(0),
        failed: value["failed"].as_u64().unwrap_or(0),
        requests: value["requests"].as_u64(),
        billing_units: value["billingUnits"].as_u64(),
        p50_ms: value["p50Ms"].as_f64(),
        p99_ms: value["p99Ms"].as_f64(),
        ..Sample::default()
    })
}

/// The figures of `forwarder send --summary-json`.
pub(super) fn send_sample(finished: &measure::Finished) -> Result<Sample> {
    let line = finished
        .stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .with_context(|| {
            format!(
                "forwarder send printed no summary ({}):\n{}",
                finished.status,
                finished.stderr.trim()
            )
        })?;
    let value: Value = serde_json::from_str(line).context("the summary is not JSON")?;
    if !finished.status.success() {
        eprintln!(
            "bench: warning: forwarder send: {}\n{}",
            finished.status,
            finished.stderr.trim()
        );
    }
    Ok(Sample {
        sent: value["sent"].as_u64().unwrap_or(0),
        failed: value["failed"].as_u64().unwrap_or(0) + value["refused"].as_u64().unwrap_or(0),
        requests: value["requests"].as_u64(),
        billing_units: value["billingUnits"].as_u64(),
        in_flight_limit: value["inFlightLimit"]
            .as_u64()
            .zip(value["peakInFlightLimit"].as_u64()),
        ..Sample::default()
    })
}
