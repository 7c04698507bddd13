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
    /// Connect with TLS.
    pub use_tls: bool,
    /// PEM file of the certificates that may sign the master's (or the master's own
    /// self-signed one); `None` means `SSL_CERT_FILE`, or else the built-in Mozilla roots.
    pub tls_ca: Option<PathBuf>,
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
            .field("tls_ca", &self.tls_ca)
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

/// How a new worker connects: TLS or not, and which certificates it trusts.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// Connect with TLS (`--use-tls`).
    pub use_tls: bool,
    /// CA (or self-signed certificate) file to trust (`--tls-ca`); made absolute.
    pub ca_file: Option<PathBuf>,
}

/// Creates a worker base directory: `worker.cfg` (mode 0600), `info/admin` and `info/host`.
pub fn create(basedir: &Path, master: &str, name: &str, password: &str) -> Result<(), WorkerError> {
    create_with_tls(basedir, master, name, password, &TlsOptions::default())
}

/// Like [`create`], for a worker that connects as `tls` says.
pub fn create_with_tls(
    basedir: &Path,
    master: &str,
    name: &str,
    password: &str,
    tls: &TlsOptions,
) -> Result<(), WorkerError> {
    let ca_file = match &tls.ca_file {
        Some(path) => Some(std::path::absolute(path).map_err(io_error(path))?),
        None => None,
    };
    let options = WorkerOptions {
        master: master.to_owned(),
        name: name.to_owned(),
        password: password.to_owned(),
        basedir: basedir.to_path_buf(),
        use_tls: tls.use_tls,
        tls_ca: ca_file.clone(),
        max_retries: None,
    };
    options.validate()?;
    if ca_file
        .as_deref()
        .is_some_and(|p| p.display().to_string().contains(['\n', '\r']))
    {
        return Err(WorkerError::InvalidOption(
            "the CA file name must be one line".into(),
        ));
    }
    let info = basedir.join("info");
    std::fs::create_dir_all(&info).map_err(io_error(&info))?;
    let path = basedir.join(CONFIG_FILE);
    let tls_ca = match &ca_file {
        Some(path) => format!("tls_ca = {}\n", path.display()),
        None => "# tls_ca = /path/to/ca.pem\n".to_owned(),
    };
    let text = format!(
        "# Signalbox worker configuration (contains the password: keep it mode 0600)\n\
         master = {master}\nname = {name}\npassword = {password}\nuse_tls = {}\n{tls_ca}# max_retries = 10\n",
        tls.use_tls
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
    let mut tls_ca = None;
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
            "tls_ca" => tls_ca = Some(PathBuf::from(value.trim_end())),
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
        tls_ca,
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
