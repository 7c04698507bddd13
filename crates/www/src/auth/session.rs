//! Login sessions: a random id, signed, in an HttpOnly SameSite cookie (`Secure` under
//! https), mapped to the user in memory; and the login throttle.
//!
//! Upstream keeps its session in a signed JWT (spec §12.1); we keep the cookie name
//! (`TWISTED_SESSION`, `TWISTED_SECURE_SESSION` under https) so scripts keep working, but
//! hold the session on the server so that logout really ends it. A login always makes a new
//! id, so an id planted before login is worthless (no session fixation). Sessions end a week
//! after login and do not survive a restart of the master.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::User;
use crate::AppState;

/// The session cookie over http.
pub const COOKIE: &str = "TWISTED_SESSION";
/// The session cookie over https.
pub const SECURE_COOKIE: &str = "TWISTED_SECURE_SESSION";

const LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);
/// Failed logins allowed per user name and address within [`THROTTLE_WINDOW`].
const THROTTLE_FAILURES: usize = 5;
const THROTTLE_WINDOW: Duration = Duration::from_secs(300);

/// The sessions and login throttle of one master directory.
pub struct Sessions {
    secret: [u8; 32],
    live: Mutex<HashMap<String, (User, Instant)>>,
    failures: Mutex<HashMap<String, Vec<Instant>>>,
}

impl Sessions {
    /// The sessions of the master whose directory `state` serves (one per process and
    /// directory).
    pub fn of(state: &AppState) -> Arc<Sessions> {
        static REGISTRY: OnceLock<Mutex<HashMap<PathBuf, Arc<Sessions>>>> = OnceLock::new();
        let registry = REGISTRY.get_or_init(Default::default);
        let mut map = registry.lock().expect("sessions registry lock poisoned");
        map.entry(state.shared.basedir.clone())
            .or_insert_with(|| {
                Arc::new(Sessions {
                    secret: random_bytes(),
                    live: Mutex::new(HashMap::new()),
                    failures: Mutex::new(HashMap::new()),
                })
            })
            .clone()
    }

    /// The user of a request's valid session cookie.
    pub fn user(&self, headers: &HeaderMap) -> Option<User> {
        let id = self.session_id(headers)?;
        let live = self.live.lock().expect("sessions lock poisoned");
        let (user, expires) = live.get(&id)?;
        (*expires > Instant::now()).then(|| user.clone())
    }

    /// Starts a fresh session for `user` and returns its `Set-Cookie` value. Any session the
    /// request carried is ended first.
    pub fn login(&self, headers: &HeaderMap, user: User, secure: bool) -> String {
        let mut live = self.live.lock().expect("sessions lock poisoned");
        if let Some(old) = self.session_id(headers) {
            live.remove(&old);
        }
        let now = Instant::now();
        live.retain(|_, (_, expires)| *expires > now);
        let id = hex(&random_bytes());
        live.insert(id.clone(), (user, now + LIFETIME));
        let value = format!("{id}.{}", self.sign(&id));
        cookie(secure, &value, LIFETIME.as_secs())
    }

    /// Ends the request's session; returns the `Set-Cookie` value that clears it.
    pub fn logout(&self, headers: &HeaderMap, secure: bool) -> String {
        if let Some(id) = self.session_id(headers) {
            self.live
                .lock()
                .expect("sessions lock poisoned")
                .remove(&id);
        }
        cookie(secure, "", 0)
    }

    /// True if `key` (user name and address) has failed too often lately.
    pub fn throttled(&self, key: &str) -> bool {
        let mut failures = self.failures.lock().expect("throttle lock poisoned");
        let Some(times) = failures.get_mut(key) else {
            return false;
        };
        let now = Instant::now();
        times.retain(|t| now.duration_since(*t) < THROTTLE_WINDOW);
        times.len() >= THROTTLE_FAILURES
    }

    /// Records a failed login for `key`.
    pub fn failed(&self, key: &str) {
        let mut failures = self.failures.lock().expect("throttle lock poisoned");
        if failures.len() > 10_000 {
            // A flood of distinct names: forget the oldest state rather than grow forever.
            failures.clear();
        }
        failures
            .entry(key.to_string())
            .or_default()
            .push(Instant::now());
    }

    /// Forgets the failures of `key` after a successful login.
    pub fn succeeded(&self, key: &str) {
        self.failures
            .lock()
            .expect("throttle lock poisoned")
            .remove(key);
    }

    fn session_id(&self, headers: &HeaderMap) -> Option<String> {
        let cookies = headers.get_all(header::COOKIE);
        for value in cookies.iter().filter_map(|v| v.to_str().ok()) {
            for part in value.split(';') {
                let Some((name, value)) = part.trim().split_once('=') else {
                    continue;
                };
                if name != COOKIE && name != SECURE_COOKIE {
                    continue;
                }
                let Some((id, signature)) = value.split_once('.') else {
                    continue;
                };
                if bool::from(self.sign(id).as_bytes().ct_eq(signature.as_bytes())) {
                    return Some(id.to_string());
                }
            }
        }
        None
    }

    fn sign(&self, id: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC accepts any key length");
        mac.update(id.as_bytes());
        hex(&mac.finalize().into_bytes())
    }
}

/// True if the request came over https, directly or through a proxy that says so.
pub fn is_https(state: &AppState, headers: &HeaderMap) -> bool {
    let forwarded = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    forwarded
        || state
            .shared
            .runtime()
            .config
            .buildbot_url
            .starts_with("https://")
}

fn cookie(secure: bool, value: &str, max_age: u64) -> String {
    let name = if secure { SECURE_COOKIE } else { COOKIE };
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 32 bytes from the kernel's generator.
pub(crate) fn random_bytes() -> [u8; 32] {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    let read = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        // Without the kernel's generator, fall back on a hash of time and addresses; a
        // master without /dev/urandom is broken in other ways too.
        use sha2::Digest;
        let seed = format!(
            "{:?}{:p}{}",
            std::time::SystemTime::now(),
            &bytes,
            std::process::id()
        );
        bytes.copy_from_slice(&Sha256::digest(seed.as_bytes()));
    }
    bytes
}
