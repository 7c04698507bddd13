//! The `get_worker_info` answer (spec §4.3).

use std::path::Path;

use protocol::{Value, WORKER_COMMANDS, WORKER_COMMANDS_VERSION};

/// The worker version we claim: the stock release whose protocol we speak.
pub(crate) const COMPATIBLE_VERSION: &str = "4.3.0";

/// Gathers basedir, system, environ, numcpus, version, worker_commands,
/// delete_leftover_dirs, the files of `<basedir>/info/` and the `os_*` keys of /etc/os-release.
pub(crate) fn worker_info(basedir: &Path) -> Value {
    let mut info: Vec<(Value, Value)> = Vec::new();
    let mut put = |key: &str, value: Value| info.push((Value::from(key), value));
    for (name, content) in info_files(&basedir.join("info")) {
        put(&name, Value::from(content));
    }
    for (key, value) in os_release(&std::fs::read_to_string("/etc/os-release").unwrap_or_default())
    {
        put(&key, Value::from(value));
    }
    put(
        "basedir",
        Value::from(basedir.to_string_lossy().into_owned()),
    );
    put("system", Value::from("posix"));
    let environ = std::env::vars_os()
        .map(|(k, v)| {
            (
                Value::from(k.to_string_lossy().into_owned()),
                Value::from(v.to_string_lossy().into_owned()),
            )
        })
        .collect();
    put("environ", Value::Map(environ));
    let numcpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    put("numcpus", Value::from(numcpus as u64));
    put("version", Value::from(COMPATIBLE_VERSION));
    put("signalbox_version", Value::from(env!("CARGO_PKG_VERSION")));
    let commands = WORKER_COMMANDS
        .iter()
        .map(|name| (Value::from(*name), Value::from(WORKER_COMMANDS_VERSION)))
        .collect();
    put("worker_commands", Value::Map(commands));
    put("delete_leftover_dirs", Value::from(0));
    Value::Map(info)
}

/// Name and content of each regular file directly in `dir`.
fn info_files(dir: &Path) -> Vec<(String, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_file() {
            continue;
        }
        let Ok(content) = std::fs::read(&path) else {
            continue;
        };
        files.push((
            entry.file_name().to_string_lossy().into_owned(),
            String::from_utf8_lossy(&content).into_owned(),
        ));
    }
    files.sort();
    files
}

/// `KEY=value` lines as `("os_key", "value")`, quotes removed.
fn os_release(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| {
            let value = value.trim();
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            (
                format!("os_{}", key.trim().to_lowercase()),
                unquoted.to_owned(),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn os_release_lines() {
        let parsed = os_release("ID=debian\nVERSION_ID=\"12\"\n# comment\nPRETTY_NAME='x y'\n");
        assert_eq!(
            parsed,
            [
                ("os_id".into(), "debian".into()),
                ("os_version_id".into(), "12".into()),
                ("os_pretty_name".into(), "x y".into())
            ]
        );
    }
}
