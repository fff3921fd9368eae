//! The readiness check: `GET /_localstack/health` lists every service as available.

use crate::SERVICES;

/// Checks that the LocalStack at `endpoint` (`http://host:port`) reports every service of
/// [`SERVICES`] as available or running.
pub(crate) fn check(endpoint: &str) -> Result<(), String> {
    let answer = venv_launch::http::get(endpoint, "/_localstack/health")?;
    if answer.status != 200 {
        return Err(format!("health answered HTTP {}", answer.status));
    }
    let health: serde_json::Value =
        serde_json::from_str(&answer.body).map_err(|e| format!("health is not JSON ({e})"))?;
    let services = health.get("services").ok_or("health lists no services")?;
    let missing: Vec<String> = SERVICES
        .iter()
        .filter_map(|s| match services.get(*s).and_then(|v| v.as_str()) {
            Some("available" | "running") => None,
            Some(other) => Some(format!("{s} is {other}")),
            None => Some(format!("{s} is missing")),
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(missing.join(", "))
    }
}
