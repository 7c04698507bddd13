//! Who may post to a dialect: each forge's signature or token, checked in constant time
//! before the dialect reads a byte of the body.
//!
//! | dialect | secret option | header |
//! | --- | --- | --- |
//! | `github` | `secret` (required unless `strict: False`) | `X-Hub-Signature-256: sha256=HEX`, else `X-Hub-Signature: sha1=HEX` |
//! | `gitlab` | `secret` | `X-Gitlab-Token: SECRET` |
//! | `gitea` | `secret` | `X-Gitea-Signature` or `X-Forgejo-Signature: HEX` (HMAC-SHA256), or `X-Hub-Signature-256` |
//! | `bitbucket` | `secret` | `X-Hub-Signature: sha256=HEX` |
//! | `googlecode` | `secret_key` | `Google-Code-Project-Hosting-Hook-Hmac: HEX` (HMAC-MD5) |
//!
//! Unlike Buildbot, a GitHub hook with no secret refuses every request unless the config
//! says `strict: False`, and GitLab tokens are compared in constant time. For the other
//! forges a configured secret is always enforced; without one they rely on
//! `change_hook_auth`, as in Buildbot.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Dialect, HookError, HookRequest};

/// Refuses `request` unless it carries what `dialect` configured with `options` requires.
pub fn verify(dialect: Dialect, request: &HookRequest, options: &Value) -> Result<(), HookError> {
    match dialect {
        Dialect::GitHub => github(request, options),
        Dialect::GitLab => match secret(options, "secret")? {
            None => Ok(()),
            Some(secret) => token(request, "x-gitlab-token", secret),
        },
        Dialect::Gitea => match secret(options, "secret")? {
            None => Ok(()),
            Some(secret) => gitea(request, secret),
        },
        Dialect::Bitbucket => match secret(options, "secret")? {
            None => Ok(()),
            Some(secret) => {
                let given = prefixed(request, "x-hub-signature", "sha256=")?;
                check_mac(
                    Hmac::<Sha256>::new_from_slice(secret.as_bytes()),
                    request,
                    given,
                )
            }
        },
        Dialect::GoogleCode => match secret(options, "secret_key")? {
            None => Ok(()),
            Some(secret) => {
                let given = header(request, "google-code-project-hosting-hook-hmac")?;
                check_mac(
                    Hmac::<md5::Md5>::new_from_slice(secret.as_bytes()),
                    request,
                    given,
                )
            }
        },
        Dialect::Base | Dialect::Gitorious | Dialect::Poller => Ok(()),
    }
}

fn github(request: &HookRequest, options: &Value) -> Result<(), HookError> {
    let strict = match options.get("strict") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(HookError::Options(
                "github: 'strict' must be True or False".into(),
            ))
        }
    };
    let Some(secret) = secret(options, "secret")? else {
        return match strict {
            true => Err(HookError::Unauthorized(
                "github hook has no secret: set 'secret', or 'strict': False to accept unsigned requests".into(),
            )),
            false => Ok(()),
        };
    };
    // SHA-256 when GitHub sent it; the SHA-1 header alone only from older senders.
    if request.headers.contains_key("x-hub-signature-256") {
        let given = prefixed(request, "x-hub-signature-256", "sha256=")?;
        return check_mac(
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()),
            request,
            given,
        );
    }
    let given = prefixed(request, "x-hub-signature", "sha1=")?;
    check_mac(
        Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()),
        request,
        given,
    )
}

fn gitea(request: &HookRequest, secret: &str) -> Result<(), HookError> {
    let key = secret.as_bytes();
    for name in ["x-gitea-signature", "x-forgejo-signature"] {
        if request.headers.contains_key(name) {
            return check_mac(
                Hmac::<Sha256>::new_from_slice(key),
                request,
                header(request, name)?,
            );
        }
    }
    let given = prefixed(request, "x-hub-signature-256", "sha256=")?;
    check_mac(Hmac::<Sha256>::new_from_slice(key), request, given)
}

/// The string option `name`, `None` when unset or empty.
fn secret<'a>(options: &'a Value, name: &str) -> Result<Option<&'a str>, HookError> {
    match options.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(HookError::Options(format!("'{name}' must be a string"))),
    }
}

fn header<'a>(request: &'a HookRequest, name: &str) -> Result<&'a str, HookError> {
    let value = request
        .headers
        .get(name)
        .ok_or_else(|| HookError::Unauthorized(format!("request has no {name} header")))?;
    value
        .to_str()
        .map(str::trim)
        .map_err(|_| HookError::Unauthorized(format!("malformed {name} header")))
}

fn prefixed<'a>(request: &'a HookRequest, name: &str, prefix: &str) -> Result<&'a str, HookError> {
    header(request, name)?
        .strip_prefix(prefix)
        .ok_or_else(|| HookError::Unauthorized(format!("{name} must start with '{prefix}'")))
}

/// Checks a hex MAC of the raw body; `Mac::verify_slice` compares in constant time.
fn check_mac<M: Mac>(
    mac: Result<M, hmac::digest::InvalidLength>,
    request: &HookRequest,
    given_hex: &str,
) -> Result<(), HookError> {
    let mut mac = mac.map_err(|_| HookError::Options("secret cannot key the signature".into()))?;
    let given = decode_hex(given_hex)
        .ok_or_else(|| HookError::Unauthorized("signature is not hexadecimal".into()))?;
    mac.update(&request.body);
    mac.verify_slice(&given)
        .map_err(|_| HookError::Unauthorized("signature does not match the body".into()))
}

/// Compares a token header with the secret in constant time. Both sides are hashed first,
/// so that not even the secret's length leaks.
fn token(request: &HookRequest, name: &str, secret: &str) -> Result<(), HookError> {
    let given = header(request, name)?;
    let equal = Sha256::digest(given.as_bytes()).ct_eq(&Sha256::digest(secret.as_bytes()));
    match bool::from(equal) {
        true => Ok(()),
        false => Err(HookError::Unauthorized(format!("{name} does not match"))),
    }
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let pairs = text.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() || text.len() > 256 {
        return None;
    }
    let digit = |b: u8| (b as char).to_digit(16);
    pairs
        .map(|pair| Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8))
        .collect()
}

/// Hex HMAC-SHA256 of `body` under `secret`, as GitHub and Gitea send it (for tests and
/// for `signalbox`'s own clients).
pub fn hmac_sha256_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// Hex HMAC-SHA1 of `body` under `secret` (GitHub's older `X-Hub-Signature`).
pub fn hmac_sha1_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        <Hmac<sha1::Sha1> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// Hex HMAC-MD5 of `body` under `secret` (Google Code's post-commit hook).
pub fn hmac_md5_hex(secret: &[u8], body: &[u8]) -> String {
    let mut mac =
        <Hmac<md5::Md5> as Mac>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
