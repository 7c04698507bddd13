//! The worker's base directory: `worker.cfg` (simple `key = value` lines, mode 0600 because it
//! holds the password) and the `info/` files, written by [`create`] and read by [`load_options`].

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::WorkerError;

/// Name of the config file inside the base directory.
pub const CONFIG_FILE: &str = "worker.cfg";

/// Everything [`crate::run`] needs to connect and work.
#[derive(Clone)]
pub struct WorkerOptions {
    /// The master's `host:port` (port 9989 when omitted).
    pub master: String,
    /// Worker name, sent in Basic auth; must not contain ':'.
    pub name: String,
    /// Worker password, sent in Basic auth.
    pub password: String,
    /// Absolute base directory (info files, default place for builder directories).
    pub basedir: PathBuf,
    /// Connect with TLS (not implemented yet: `run` returns an error).
    pub use_tls: bool,
    /// Exit after this many consecutive failed connection attempts; `None` retries forever.
    pub max_retries: Option<u32>,
}

impl std::fmt::Debug for WorkerOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerOptions")
            .field("master", &self.master)
            .field("name", &self.name)
            .field("password", &"***")
            .field("basedir", &self.basedir)
            .field("use_tls", &self.use_tls)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

impl WorkerOptions {
    /// Checks what the handshake needs: a name without ':' and no line breaks anywhere.
    pub fn validate(&self) -> Result<(), WorkerError> {
        if self.name.is_empty() || self.name.contains(':') {
            return Err(WorkerError::InvalidOption(
                "worker name must be non-empty and must not contain ':'".into(),
            ));
        }
        let fields = [&self.master, &self.name, &self.password];
        if fields.iter().any(|v| v.contains(['\n', '\r'])) {
            return Err(WorkerError::InvalidOption(
                "master, name and password must be single lines".into(),
            ));
        }
        if self.master.is_empty() {
            return Err(WorkerError::InvalidOption("master address is empty".into()));
        }
        Ok(())
    }

    /// The `host:port` to connect to, with the default port 9989 added when missing.
    pub fn master_address(&self) -> String {
        let has_port = match self.master.rsplit_once(':') {
            Some((host, port)) => {
                !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':')
            }
            None => false,
        };
        if has_port {
            self.master.clone()
        } else {
            format!("{}:9989", self.master)
        }
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> WorkerError + '_ {
    move |source| WorkerError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Creates a worker base directory: `worker.cfg` (mode 0600), `info/admin` and `info/host`.
pub fn create(basedir: &Path, master: &str, name: &str, password: &str) -> Result<(), WorkerError> {
    let options = WorkerOptions {
        master: master.to_owned(),
        name: name.to_owned(),
        password: password.to_owned(),
        basedir: basedir.to_path_buf(),
        use_tls: false,
        max_retries: None,
    };
    options.validate()?;
    let info = basedir.join("info");
    std::fs::create_dir_all(&info).map_err(io_error(&info))?;
    let path = basedir.join(CONFIG_FILE);
    let text = format!(
        "# Signalbox worker configuration (contains the password: keep it mode 0600)\n\
         master = {master}\nname = {name}\npassword = {password}\nuse_tls = false\n# max_retries = 10\n"
    );
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .map_err(io_error(&path))?;
    file.write_all(text.as_bytes()).map_err(io_error(&path))?;
    for (file_name, content) in [
        ("admin", "Your Name Here <admin@youraddress.invalid>\n"),
        ("host", "Please put a description of this build host here\n"),
    ] {
        let path = info.join(file_name);
        if !path.exists() {
            std::fs::write(&path, content).map_err(io_error(&path))?;
        }
    }
    Ok(())
}

/// Reads `basedir/worker.cfg`; the base directory is made absolute.
pub fn load_options(basedir: &Path) -> Result<WorkerOptions, WorkerError> {
    let path = basedir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&path).map_err(io_error(&path))?;
    let basedir = std::path::absolute(basedir).map_err(io_error(basedir))?;
    let config_error = |line: usize, message: String| WorkerError::Config {
        path: path.clone(),
        line,
        message,
    };
    let (mut master, mut name, mut password) = (None, None, None);
    let mut use_tls = false;
    let mut max_retries = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(config_error(number, "expected `key = value`".into()));
        };
        // Only leading blanks are dropped from a value: a password may end with spaces.
        let value = value.trim_start().to_owned();
        match key.trim() {
            "master" => master = Some(value.trim_end().to_owned()),
            "name" => name = Some(value.trim_end().to_owned()),
            "password" => password = Some(value),
            "use_tls" => {
                use_tls = match value.trim_end() {
                    "true" | "1" | "yes" => true,
                    "false" | "0" | "no" => false,
                    other => {
                        return Err(config_error(
                            number,
                            format!("use_tls must be true or false, not {other:?}"),
                        ))
                    }
                }
            }
            "max_retries" => {
                let parsed = value
                    .trim_end()
                    .parse()
                    .map_err(|_| config_error(number, "max_retries must be a number".into()))?;
                max_retries = Some(parsed);
            }
            other => return Err(config_error(number, format!("unknown key {other:?}"))),
        }
    }
    let missing = |key: &str| config_error(0, format!("missing key {key:?}"));
    let options = WorkerOptions {
        master: master.ok_or_else(|| missing("master"))?,
        name: name.ok_or_else(|| missing("name"))?,
        password: password.ok_or_else(|| missing("password"))?,
        basedir,
        use_tls,
        max_retries,
    };
    options.validate()?;
    Ok(options)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn create_then_load() {
        let dir = tempfile::tempdir().unwrap();
        create(dir.path(), "127.0.0.1:9989", "w1", "p:ss ").unwrap();
        let mode = std::fs::metadata(dir.path().join(CONFIG_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(dir.path().join("info/admin").is_file());
        let options = load_options(dir.path()).unwrap();
        assert_eq!(
            (
                options.master.as_str(),
                options.name.as_str(),
                options.password.as_str()
            ),
            ("127.0.0.1:9989", "w1", "p:ss ")
        );
        assert!(create(dir.path(), "m", "bad:name", "p").is_err());
        let with_port = WorkerOptions {
            master: "example.org".into(),
            ..options
        };
        assert_eq!(with_port.master_address(), "example.org:9989");
    }
}
