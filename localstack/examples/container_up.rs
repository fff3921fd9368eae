//! Starts LocalStack in a container through the container backend (testcontainers), prints its
//! endpoint as the only line of stdout, and keeps the container until stdin closes; then it
//! removes the container. `cargo xtask test --backend container` runs the tests between the two.
//!
//! ```text
//! LOCALSTACK_IMAGE=localstack-local:2026.3.0 cargo run -p localstack --features container --example container_up
//! ```

use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let config = match localstack::Config::from_env() {
        Ok(config) => localstack::Config {
            backend: localstack::Backend::Container,
            ..config
        },
        Err(error) => {
            eprintln!("container_up: {error}");
            return ExitCode::FAILURE;
        }
    };
    let instance = match localstack::start(&config) {
        Ok(instance) => instance,
        Err(error) => {
            eprintln!("container_up: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{}", instance.endpoint())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    // Until whoever started this closes stdin (or ends).
    let _ = std::io::copy(&mut std::io::stdin(), &mut std::io::sink());
    drop(instance);
    eprintln!("container_up: container removed");
    ExitCode::SUCCESS
}
