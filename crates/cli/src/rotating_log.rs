//! `master.log` for the daemon: tracing output through a size-rotated file
//! ([`www::rotating_log`]), rotated like `http.log` by the WebStatus options `rotateLength`
//! and `maxRotatedFiles` (default 1 MB, ten old files).
//!
//! The daemon's stderr still points at `master.log` for what comes before logging starts
//! (a config error) and for a crash; a panic is also logged through tracing, so it lands in
//! the live file.

use std::path::Path;

use www::rotating_log::{
    Rotation, SharedRotatingFile, DEFAULT_MAX_ROTATED_FILES, DEFAULT_ROTATE_LENGTH,
};

/// Set in the daemon's environment by `start`: log to a rotated `master.log`.
pub const ENV: &str = "SIGNALBOX_ROTATED_MASTER_LOG";

/// The rotation of `master.log` in `dir`, from the config's WebStatus options.
pub fn rotation(dir: &Path) -> Rotation {
    let options = config::load(&dir.join("master.cfg"))
        .map(|loaded| loaded.config.www.options)
        .unwrap_or_default();
    let number = |name: &str| options.get(name).and_then(serde_json::Value::as_u64);
    Rotation {
        path: dir.join("master.log"),
        rotate_length: number("rotateLength").unwrap_or(DEFAULT_ROTATE_LENGTH),
        max_rotated_files: number("maxRotatedFiles")
            .map(|n| n as usize)
            .unwrap_or(DEFAULT_MAX_ROTATED_FILES),
    }
}

/// Sends tracing output to the rotated `master.log` of `dir`; falls back on stderr if the
/// file cannot be opened.
pub fn init(dir: &Path) {
    let file = match SharedRotatingFile::open(rotation(dir)) {
        Ok(file) => file,
        Err(e) => {
            eprintln!("cannot open master.log for rotation ({e}); logging to stderr");
            crate::init_logging();
            return;
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("SIGNALBOX_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(move || file.clone())
        .with_ansi(false)
        .with_target(false)
        .try_init();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(panic = %info, "the master panicked");
        previous(info);
    }));
}
