//! Logging: human-readable by default, one JSON object per line with `--log-format json`.

use tracing_subscriber::EnvFilter;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// For people at a terminal.
    Pretty,
    /// For log collectors.
    Json,
}

/// Installs the global subscriber; `filter` is an `EnvFilter` directive such as `info` or
/// `invite_http=debug,info`.
pub(crate) fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Standard error, so that what a command prints on standard output (`token`, `check`, the
    // demo's instructions) can be captured or piped without log lines mixed in.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    // A second call (tests) finds a subscriber already installed; that one keeps working.
    let _ = match format {
        LogFormat::Pretty => builder.compact().try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}
