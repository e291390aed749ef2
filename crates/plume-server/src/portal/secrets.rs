//! The portal's secrets: argon2id password hashes, session and CSRF tokens, top-up codes, and
//! the sign-in throttle that stops password guessing.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, SaltString};
use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use rand::{Rng, RngCore};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's minimum), as a
/// PHC string that carries its own salt and parameters. Slow on purpose: call it off the
/// async threads.
pub fn hash_password(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Checks a password against a stored PHC string in constant time. `None` as the stored
/// hash still does the work, so an unknown email takes as long as a wrong password.
pub fn verify_password(password: &str, stored: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a password").unwrap_or_default());
    let Ok(parsed) = PasswordHash::new(stored.unwrap_or(dummy)) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && stored.is_some()
}

/// A random secret as hex: session tokens (32 bytes) and CSRF tokens (16 bytes).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Sessions and codes are stored as SHA-256: a leaked database row signs no one in.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Crockford's base32 without I, L, O, U: nothing to misread when typed from a card.
const CODE_ALPHABET: &[u8] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A top-up code: `PLUME-` and four groups of five (100 random bits).
pub fn new_topup_code() -> String {
    let mut rng = rand::thread_rng();
    let groups: Vec<String> = (0..4)
        .map(|_| {
            (0..5)
                .map(|_| CODE_ALPHABET[rng.gen_range(0..CODE_ALPHABET.len())] as char)
                .collect()
        })
        .collect();
    format!("PLUME-{}", groups.join("-"))
}

/// A code as typed (any case, spaces or dashes, with or without `PLUME-`) in the one form
/// that is hashed; `None` when it cannot be a code.
pub fn normalize_code(typed: &str) -> Option<String> {
    let mut s: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_ascii_uppercase();
    if let Some(rest) = s.strip_prefix("PLUME") {
        s = rest.to_string();
    }
    (s.len() == 20 && s.bytes().all(|b| CODE_ALPHABET.contains(&b))).then_some(s)
}

/// What the operator sees of a code after issuing it: `PLUME-ABCDE`.
pub fn code_prefix(normalized: &str) -> String {
    format!("PLUME-{}", &normalized[..5.min(normalized.len())])
}

/// Counts failed sign-ins per account and per client address in a sliding window; past the
/// limit, sign-in is refused until the window has passed, whatever the password. Kept in
/// this process: with several nodes each counts its own share.
pub struct LoginThrottle {
    per_account: u32,
    per_address: u32,
    window: Duration,
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginThrottle {
    pub fn new(per_account: u32, per_address: u32, window: Duration) -> LoginThrottle {
        LoginThrottle {
            per_account,
            per_address,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    fn keys(email: &str, address: &str) -> [(String, u32); 2] {
        [
            (format!("account:{email}"), 0),
            (format!("address:{address}"), 1),
        ]
    }

    /// `Err((seconds to wait, which))` when the account or the address is locked out.
    pub fn check(&self, email: &str, address: &str) -> Result<(), (u64, &'static str)> {
        let now = Instant::now();
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for (key, which) in Self::keys(email, address) {
            let limit = if which == 0 {
                self.per_account
            } else {
                self.per_address
            };
            if limit == 0 {
                continue;
            }
            if let Some((count, since)) = failures.get(&key) {
                let elapsed = now.duration_since(*since);
                if *count >= limit && elapsed < self.window {
                    let wait = (self.window - elapsed).as_secs().max(1);
                    return Err((
                        wait,
                        if which == 0 {
                            "this account"
                        } else {
                            "your address"
                        },
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn failed(&self, email: &str, address: &str) {
        let now = Instant::now();
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() > 100_000 {
            let window = self.window;
            failures.retain(|_, (_, since)| now.duration_since(*since) < window);
        }
        for (key, _) in Self::keys(email, address) {
            let entry = failures.entry(key).or_insert((0, now));
            if now.duration_since(entry.1) >= self.window {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    /// A right password clears the account's count (not the address's: one address
    /// guessing many accounts stays limited).
    pub fn succeeded(&self, email: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures.remove(&format!("account:{email}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", Some(&hash)));
        assert!(!verify_password("wrong horse", Some(&hash)));
        assert!(!verify_password("not a password", None));
    }

    #[test]
    fn codes_normalize_however_typed() {
        let code = new_topup_code();
        let n = normalize_code(&code).unwrap();
        assert_eq!(n.len(), 20);
        assert_eq!(
            normalize_code(&code.to_lowercase().replace('-', " ")),
            Some(n.clone())
        );
        assert_eq!(normalize_code(&n), Some(n.clone()));
        assert_eq!(code_prefix(&n), code[..11]);
        assert_eq!(normalize_code("PLUME-SHORT"), None);
        assert_eq!(normalize_code("PLUME-IIIII-IIIII-IIIII-IIIII"), None);
    }

    #[test]
    fn throttle_locks_an_account_and_an_address() {
        let t = LoginThrottle::new(3, 5, Duration::from_secs(60));
        for _ in 0..3 {
            assert!(t.check("a@x.org", "1.2.3.4").is_ok());
            t.failed("a@x.org", "1.2.3.4");
        }
        let (wait, which) = t.check("a@x.org", "9.9.9.9").unwrap_err();
        assert!(wait > 0 && which == "this account");
        // Another account from the same address still has two tries before the address locks.
        t.failed("b@x.org", "1.2.3.4");
        assert!(t.check("b@x.org", "1.2.3.4").is_ok());
        t.failed("b@x.org", "1.2.3.4");
        assert_eq!(t.check("c@x.org", "1.2.3.4").unwrap_err().1, "your address");
        t.succeeded("a@x.org");
        assert!(t.check("a@x.org", "9.9.9.9").is_ok());
    }
}
