//! Logging for the binaries that do not run in Lambda (the local runner, the sandbox, the probe CLI). Lambda
//! functions use `lambda_runtime`'s subscriber, which follows the function's `LoggingConfig` (JSON in AWS).

use tracing_subscriber::{fmt, EnvFilter};

/// Human-readable logs on stderr (stdout stays for the program's own output), filtered by `RUST_LOG`
/// (default `info`, noisy dependencies at `warn`).
pub fn init_local() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,aws_config=warn,aws_smithy_runtime=warn,hyper=warn,rustls=warn"));
    // A second init (tests starting several systems) is harmless; keep the first.
    let _already_set = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
