//! The password-hash verifier for htpasswd files and the users table: bcrypt (`$2y$`,
//! `$2b$`, `$2a$`), Apache's apr1 MD5 (`$apr1$`, and `$1$`), `{SHA}`, traditional DES
//! `crypt`, and Buildbot's salted SHA-1 (`users.encrypt`: 8 hex of salt, 40 of digest).
//!
//! DESIGN §11 names this as a gap to fill by hand: bcrypt comes from the `bcrypt` crate and
//! the digests from RustCrypto; apr1 and DES crypt are written here, since the crates that
//! do them pull in an older RustCrypto generation. Comparisons of derived values are in
//! constant time.

use base64::Engine;
use md5::{Digest, Md5};
use sha1::Sha1;
use subtle::ConstantTimeEq;

/// True if `password` matches the stored `hash`.
pub fn verify(password: &str, hash: &str) -> bool {
    let hash = hash.trim();
    if hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$") {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    if let Some(rest) = hash.strip_prefix("$apr1$") {
        return md5_check(password.as_bytes(), "$apr1$", rest, hash);
    }
    if let Some(rest) = hash.strip_prefix("$1$") {
        return md5_check(password.as_bytes(), "$1$", rest, hash);
    }
    if let Some(digest) = hash.strip_prefix("{SHA}") {
        let ours = base64::engine::general_purpose::STANDARD.encode(Sha1::digest(password));
        return same(&ours, digest);
    }
    if hash.len() == 48 && hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        let (salt, digest) = hash.split_at(8);
        let ours = hex(&Sha1::digest(format!("{password}{salt}")));
        return same(&ours, digest);
    }
    if hash.len() == 13 && hash.bytes().all(is_crypt_char) {
        return match des_crypt(password.as_bytes(), hash.as_bytes()) {
            Some(ours) => same(&ours, hash),
            None => false,
        };
    }
    false
}

/// A new bcrypt hash of `password`, for the users table (`signalbox user add`).
pub fn hash(password: &str) -> String {
    bcrypt::hash(password, bcrypt::DEFAULT_COST).unwrap_or_default()
}

fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

const ITOA64: &[u8; 64] = b"./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn is_crypt_char(b: u8) -> bool {
    ITOA64.contains(&b)
}

fn md5_check(password: &[u8], magic: &str, rest: &str, full: &str) -> bool {
    let salt = rest.split('$').next().unwrap_or("");
    let salt = &salt.as_bytes()[..salt.len().min(8)];
    same(&md5_crypt(password, magic, salt), full)
}

/// Poul-Henning Kamp's MD5 crypt, with Apache's `$apr1$` magic or the original `$1$`.
fn md5_crypt(password: &[u8], magic: &str, salt: &[u8]) -> String {
    let alternate = Md5::new()
        .chain_update(password)
        .chain_update(salt)
        .chain_update(password)
        .finalize();
    let mut context = Md5::new()
        .chain_update(password)
        .chain_update(magic.as_bytes())
        .chain_update(salt);
    let mut left = password.len();
    while left > 0 {
        let n = left.min(16);
        context.update(&alternate[..n]);
        left -= n;
    }
    let mut i = password.len();
    while i > 0 {
        if i & 1 == 1 {
            context.update([0u8]);
        } else {
            context.update(&password[..1]);
        }
        i >>= 1;
    }
    let mut last = context.finalize();
    for round in 0..1000 {
        let mut c = Md5::new();
        if round & 1 == 1 {
            c.update(password);
        } else {
            c.update(last);
        }
        if round % 3 != 0 {
            c.update(salt);
        }
        if round % 7 != 0 {
            c.update(password);
        }
        if round & 1 == 1 {
            c.update(last);
        } else {
            c.update(password);
        }
        last = c.finalize();
    }
    let f = |i: usize| u32::from(last[i]);
    let mut out = format!("{magic}{}$", String::from_utf8_lossy(salt));
    let mut to64 = |mut v: u32, n: usize| {
        for _ in 0..n {
            out.push(char::from(ITOA64[(v & 0x3f) as usize]));
            v >>= 6;
        }
    };
    to64((f(0) << 16) | (f(6) << 8) | f(12), 4);
    to64((f(1) << 16) | (f(7) << 8) | f(13), 4);
    to64((f(2) << 16) | (f(8) << 8) | f(14), 4);
    to64((f(3) << 16) | (f(9) << 8) | f(15), 4);
    to64((f(4) << 16) | (f(10) << 8) | f(5), 4);
    to64(f(11), 2);
    out
}

// Traditional crypt(3): DES with a salt-perturbed expansion, 25 encryptions of zero with
// the password as key. Written bit by bit after Version 7 Unix's crypt.c; at 25 blocks a
// login, speed does not matter.

const IP: [u8; 64] = [
    58, 50, 42, 34, 26, 18, 10, 2, 60, 52, 44, 36, 28, 20, 12, 4, 62, 54, 46, 38, 30, 22, 14, 6,
    64, 56, 48, 40, 32, 24, 16, 8, 57, 49, 41, 33, 25, 17, 9, 1, 59, 51, 43, 35, 27, 19, 11, 3, 61,
    53, 45, 37, 29, 21, 13, 5, 63, 55, 47, 39, 31, 23, 15, 7,
];
const FP: [u8; 64] = [
    40, 8, 48, 16, 56, 24, 64, 32, 39, 7, 47, 15, 55, 23, 63, 31, 38, 6, 46, 14, 54, 22, 62, 30,
    37, 5, 45, 13, 53, 21, 61, 29, 36, 4, 44, 12, 52, 20, 60, 28, 35, 3, 43, 11, 51, 19, 59, 27,
    34, 2, 42, 10, 50, 18, 58, 26, 33, 1, 41, 9, 49, 17, 57, 25,
];
const PC1: [u8; 56] = [
    57, 49, 41, 33, 25, 17, 9, 1, 58, 50, 42, 34, 26, 18, 10, 2, 59, 51, 43, 35, 27, 19, 11, 3, 60,
    52, 44, 36, 63, 55, 47, 39, 31, 23, 15, 7, 62, 54, 46, 38, 30, 22, 14, 6, 61, 53, 45, 37, 29,
    21, 13, 5, 28, 20, 12, 4,
];
const PC2: [u8; 48] = [
    14, 17, 11, 24, 1, 5, 3, 28, 15, 6, 21, 10, 23, 19, 12, 4, 26, 8, 16, 7, 27, 20, 13, 2, 41, 52,
    31, 37, 47, 55, 30, 40, 51, 45, 33, 48, 44, 49, 39, 56, 34, 53, 46, 42, 50, 36, 29, 32,
];
const SHIFTS: [u8; 16] = [1, 1, 2, 2, 2, 2, 2, 2, 1, 2, 2, 2, 2, 2, 2, 1];
const E: [u8; 48] = [
    32, 1, 2, 3, 4, 5, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13, 12, 13, 14, 15, 16, 17, 16, 17, 18,
    19, 20, 21, 20, 21, 22, 23, 24, 25, 24, 25, 26, 27, 28, 29, 28, 29, 30, 31, 32, 1,
];
const P: [u8; 32] = [
    16, 7, 20, 21, 29, 12, 28, 17, 1, 15, 23, 26, 5, 18, 31, 10, 2, 8, 24, 14, 32, 27, 3, 9, 19,
    13, 30, 6, 22, 11, 4, 25,
];
const S: [[u8; 64]; 8] = [
    [
        14, 4, 13, 1, 2, 15, 11, 8, 3, 10, 6, 12, 5, 9, 0, 7, 0, 15, 7, 4, 14, 2, 13, 1, 10, 6, 12,
        11, 9, 5, 3, 8, 4, 1, 14, 8, 13, 6, 2, 11, 15, 12, 9, 7, 3, 10, 5, 0, 15, 12, 8, 2, 4, 9,
        1, 7, 5, 11, 3, 14, 10, 0, 6, 13,
    ],
    [
        15, 1, 8, 14, 6, 11, 3, 4, 9, 7, 2, 13, 12, 0, 5, 10, 3, 13, 4, 7, 15, 2, 8, 14, 12, 0, 1,
        10, 6, 9, 11, 5, 0, 14, 7, 11, 10, 4, 13, 1, 5, 8, 12, 6, 9, 3, 2, 15, 13, 8, 10, 1, 3, 15,
        4, 2, 11, 6, 7, 12, 0, 5, 14, 9,
    ],
    [
        10, 0, 9, 14, 6, 3, 15, 5, 1, 13, 12, 7, 11, 4, 2, 8, 13, 7, 0, 9, 3, 4, 6, 10, 2, 8, 5,
        14, 12, 11, 15, 1, 13, 6, 4, 9, 8, 15, 3, 0, 11, 1, 2, 12, 5, 10, 14, 7, 1, 10, 13, 0, 6,
        9, 8, 7, 4, 15, 14, 3, 11, 5, 2, 12,
    ],
    [
        7, 13, 14, 3, 0, 6, 9, 10, 1, 2, 8, 5, 11, 12, 4, 15, 13, 8, 11, 5, 6, 15, 0, 3, 4, 7, 2,
        12, 1, 10, 14, 9, 10, 6, 9, 0, 12, 11, 7, 13, 15, 1, 3, 14, 5, 2, 8, 4, 3, 15, 0, 6, 10, 1,
        13, 8, 9, 4, 5, 11, 12, 7, 2, 14,
    ],
    [
        2, 12, 4, 1, 7, 10, 11, 6, 8, 5, 3, 15, 13, 0, 14, 9, 14, 11, 2, 12, 4, 7, 13, 1, 5, 0, 15,
        10, 3, 9, 8, 6, 4, 2, 1, 11, 10, 13, 7, 8, 15, 9, 12, 5, 6, 3, 0, 14, 11, 8, 12, 7, 1, 14,
        2, 13, 6, 15, 0, 9, 10, 4, 5, 3,
    ],
    [
        12, 1, 10, 15, 9, 2, 6, 8, 0, 13, 3, 4, 14, 7, 5, 11, 10, 15, 4, 2, 7, 12, 9, 5, 6, 1, 13,
        14, 0, 11, 3, 8, 9, 14, 15, 5, 2, 8, 12, 3, 7, 0, 4, 10, 1, 13, 11, 6, 4, 3, 2, 12, 9, 5,
        15, 10, 11, 14, 1, 7, 6, 0, 8, 13,
    ],
    [
        4, 11, 2, 14, 15, 0, 8, 13, 3, 12, 9, 7, 5, 10, 6, 1, 13, 0, 11, 7, 4, 9, 1, 10, 14, 3, 5,
        12, 2, 15, 8, 6, 1, 4, 11, 13, 12, 3, 7, 14, 10, 15, 6, 8, 0, 5, 9, 2, 6, 11, 13, 8, 1, 4,
        10, 7, 9, 5, 0, 15, 14, 2, 3, 12,
    ],
    [
        13, 2, 8, 4, 6, 15, 11, 1, 10, 9, 3, 14, 5, 0, 12, 7, 1, 15, 13, 8, 10, 3, 7, 4, 12, 5, 6,
        11, 0, 14, 9, 2, 7, 11, 4, 1, 9, 12, 14, 2, 0, 6, 10, 13, 15, 3, 5, 8, 2, 1, 14, 7, 4, 10,
        8, 13, 15, 12, 9, 0, 3, 5, 6, 11,
    ],
];

/// crypt(3) of `password` with the two-character salt at the start of `setting`.
fn des_crypt(password: &[u8], setting: &[u8]) -> Option<String> {
    let salt = setting.get(..2)?;
    // The key: seven bits of each of the first eight characters, parity bits left zero.
    let mut key = [0u8; 64];
    for (i, c) in password.iter().take(8).enumerate() {
        for j in 0..7 {
            key[i * 8 + j] = (c >> (6 - j)) & 1;
        }
    }
    let subkeys = key_schedule(&key);
    let mut expansion = E;
    for (i, &c) in salt.iter().enumerate() {
        let value = ITOA64.iter().position(|&x| x == c)?;
        for j in 0..6 {
            if (value >> j) & 1 == 1 {
                expansion.swap(6 * i + j, 6 * i + j + 24);
            }
        }
    }
    let mut block = [0u8; 64];
    for _ in 0..25 {
        block = des_encrypt(&block, &subkeys, &expansion);
    }
    let mut out = String::from_utf8_lossy(salt).into_owned();
    for i in 0..11 {
        let mut c = 0usize;
        for j in 0..6 {
            c <<= 1;
            c |= usize::from(block.get(6 * i + j).copied().unwrap_or(0));
        }
        out.push(char::from(ITOA64[c]));
    }
    Some(out)
}

fn key_schedule(key: &[u8; 64]) -> [[u8; 48]; 16] {
    let mut cd = [0u8; 56];
    for (i, &p) in PC1.iter().enumerate() {
        cd[i] = key[usize::from(p) - 1];
    }
    let mut subkeys = [[0u8; 48]; 16];
    for (round, &shift) in SHIFTS.iter().enumerate() {
        for _ in 0..shift {
            cd[..28].rotate_left(1);
            cd[28..].rotate_left(1);
        }
        for (i, &p) in PC2.iter().enumerate() {
            subkeys[round][i] = cd[usize::from(p) - 1];
        }
    }
    subkeys
}

fn des_encrypt(block: &[u8; 64], subkeys: &[[u8; 48]; 16], expansion: &[u8; 48]) -> [u8; 64] {
    let mut lr = [0u8; 64];
    for (i, &p) in IP.iter().enumerate() {
        lr[i] = block[usize::from(p) - 1];
    }
    let (mut left, mut right) = ([0u8; 32], [0u8; 32]);
    left.copy_from_slice(&lr[..32]);
    right.copy_from_slice(&lr[32..]);
    for subkey in subkeys {
        let mut pre = [0u8; 48];
        for i in 0..48 {
            pre[i] = right[usize::from(expansion[i]) - 1] ^ subkey[i];
        }
        let mut f = [0u8; 32];
        for (j, sbox) in S.iter().enumerate() {
            let b = &pre[6 * j..6 * j + 6];
            let index = (b[0] << 5) | (b[5] << 4) | (b[1] << 3) | (b[2] << 2) | (b[3] << 1) | b[4];
            let k = sbox[usize::from(index)];
            for bit in 0..4 {
                f[4 * j + bit] = (k >> (3 - bit)) & 1;
            }
        }
        let mut next = [0u8; 32];
        for i in 0..32 {
            next[i] = left[i] ^ f[usize::from(P[i]) - 1];
        }
        left = right;
        right = next;
    }
    let mut rl = [0u8; 64];
    rl[..32].copy_from_slice(&right);
    rl[32..].copy_from_slice(&left);
    let mut out = [0u8; 64];
    for (i, &p) in FP.iter().enumerate() {
        out[i] = rl[usize::from(p) - 1];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_hashes() {
        // Reference values from glibc crypt(3) and Apache's documentation.
        assert!(verify("test", "aaqPiZY5xR5l."));
        assert!(!verify("tesT", "aaqPiZY5xR5l."));
        assert!(verify("password", "{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g="));
        assert!(verify("password", "$1$saltsalt$qjXMvbEw8oaL.CzflDtaK/"));
        let buildbot = format!("01020304{}", hex(&Sha1::digest("secret01020304")));
        assert!(verify("secret", &buildbot));
        assert!(!verify("other", &buildbot));
        assert!(verify("secret", &hash("secret")));
        assert!(!verify("x", "plaintext"));
    }
}
