//! The benchmark's outputs: `report.md` (tables, targets, where the limit is), `report.json`
//! (every sample) and `report.svg` (events/s by workload, hand-written SVG).

mod figures;
mod json;
mod markdown;
mod svg;
mod units;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::idle::IdleLoad;
use super::results::{MemoryResult, WorkloadResult};
use super::settings::Settings;
pub(crate) use figures::Stat;
pub(super) use markdown::markdown;

/// Everything one run measured.
#[derive(Debug)]
pub(crate) struct Results<'a> {
    pub(crate) settings: &'a Settings,
    pub(crate) workloads: Vec<WorkloadResult>,
    pub(crate) memory: Option<MemoryResult>,
    pub(crate) timings: Vec<(String, f64)>,
    /// The load while nothing was sent, before and after the runs.
    pub(crate) idle: Vec<(&'static str, IdleLoad)>,
}

/// Writes the three reports into `dir` and returns their paths.
pub(crate) fn write(results: &Results<'_>, dir: &Path) -> Result<Vec<PathBuf>> {
    let files = [
        ("report.md", markdown(results)),
        (
            "report.json",
            serde_json::to_string_pretty(&json::to_json(results))? + "\n",
        ),
        ("report.svg", svg::svg(results)),
    ];
    let mut paths = Vec::new();
    for (name, text) in files {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
        paths.push(path);
    }
    Ok(paths)
}
