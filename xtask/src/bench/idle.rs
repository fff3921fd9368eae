//! The load on LocalStack and on the machine while the benchmark sends nothing.

use std::time::Duration;

use super::measure;

#[derive(Debug, Clone, Copy)]
pub(crate) struct IdleLoad {
    /// LocalStack's cores busy: other clients of the shared instance.
    pub(super) localstack: Option<f64>,
    /// The whole machine's cores busy.
    pub(super) machine: Option<f64>,
}

/// Looks at the CPU of LocalStack and of the machine for two seconds of quiet.
pub(super) fn idle_load(localstack_pid: Option<u32>) -> IdleLoad {
    const QUIET: Duration = Duration::from_secs(2);
    let server = localstack_pid.and_then(measure::cpu_seconds);
    let machine = measure::machine_cpu();
    std::thread::sleep(QUIET);
    let per_second = |before: f64, after: f64| (after - before) / QUIET.as_secs_f64();
    IdleLoad {
        localstack: server
            .zip(localstack_pid.and_then(measure::cpu_seconds))
            .map(|((before, _), (after, _))| per_second(before, after)),
        machine: machine
            .zip(measure::machine_cpu())
            .map(|((before, _), (after, _))| per_second(before, after)),
    }
}
