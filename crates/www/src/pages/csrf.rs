//! CSRF protection for the page forms: a random nonce signed with the process secret, sent
//! both as a cookie and as a hidden field; a POST must carry both, equal and correctly signed.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The cookie that carries the token.
pub(crate) const COOKIE: &str = "signalbox_csrf";

fn sign(secret: &[u8; 32], nonce: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(nonce.as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token from the request's cookie if it is valid, else a fresh one (and true when the
/// response must set the cookie).
pub(crate) fn token(secret: &[u8; 32], cookie_header: Option<&str>) -> (String, bool) {
    if let Some(existing) = cookie(cookie_header) {
        if valid(secret, &existing) {
            return (existing, false);
        }
    }
    let mut nonce = [0u8; 16];
    if let Ok(mut file) = std::fs::File::open("/dev/urandom") {
        use std::io::Read;
        let _ = file.read_exact(&mut nonce);
    }
    let nonce = hex(&nonce);
    let signature = sign(secret, &nonce);
    (format!("{nonce}.{signature}"), true)
}

/// The `Set-Cookie` value for `token`.
pub(crate) fn set_cookie(token: &str) -> String {
    format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict")
}

/// The token in a `Cookie` header.
fn cookie(header: Option<&str>) -> Option<String> {
    header?.split(';').find_map(|part| {
        let (name, value) = part.trim().split_once('=')?;
        (name == COOKIE).then(|| value.to_string())
    })
}

fn valid(secret: &[u8; 32], token: &str) -> bool {
    let Some((nonce, signature)) = token.split_once('.') else {
        return false;
    };
    let expected = sign(secret, nonce);
    bool::from(expected.as_bytes().ct_eq(signature.as_bytes()))
}

/// True when the form field and the cookie carry the same, correctly signed token.
pub(crate) fn check(secret: &[u8; 32], field: Option<&str>, cookie_header: Option<&str>) -> bool {
    let (Some(field), Some(cookie)) = (field, cookie(cookie_header)) else {
        return false;
    };
    valid(secret, field) && bool::from(field.as_bytes().ct_eq(cookie.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_forgeries_fail() {
        let secret = [7u8; 32];
        let (token, fresh) = token(&secret, None);
        assert!(fresh);
        let cookie = format!("a=b; {COOKIE}={token}");
        assert!(check(&secret, Some(&token), Some(&cookie)));
        assert!(!check(&secret, Some(&token), None));
        assert!(!check(&secret, None, Some(&cookie)));
        assert!(!check(&[8u8; 32], Some(&token), Some(&cookie)));
        let forged = format!("{COOKIE}=abc.def");
        assert!(!check(&secret, Some("abc.def"), Some(&forged)));
    }
}
