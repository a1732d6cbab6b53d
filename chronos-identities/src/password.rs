//! Password hashing: Argon2id PHC strings (RustCrypto `argon2`), computed on a blocking
//! thread so a login never stalls the async runtime.
//!
//! Verification of an unknown user (or one without a password) runs the same Argon2 work
//! against a fixed dummy hash, so the time a login takes does not say whether the account
//! exists.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chronos_core::{Error, Result};

/// The shortest password accepted (NIST SP 800-63B).
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password accepted (bytes): longer inputs only cost hashing time.
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Iterations.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl HashParams {
    /// OWASP's current recommendation for Argon2id: 19 MiB, 2 iterations, 1 lane.
    pub const OWASP: Self = Self {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };

    fn argon2(self) -> Result<Argon2<'static>> {
        let p = Params::new(self.memory_kib, self.iterations, self.parallelism, None)
            .map_err(|e| Error::invalid_config(format!("invalid Argon2 parameters: {e}")))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, p))
    }

    /// Whether a hash made with `other` is weaker than one made with these.
    fn stronger_than(self, other: Self) -> bool {
        other.memory_kib < self.memory_kib
            || other.iterations < self.iterations
            || other.parallelism < self.parallelism
    }
}

/// Checks a password's length (the error never contains the password).
pub(crate) fn check(password: &str) -> Result<()> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(Error::validation(format!(
            "password is too short: at least {MIN_PASSWORD_CHARS} characters"
        ))
        .with("field", "password"));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::validation(format!(
            "password is too long: at most {MAX_PASSWORD_BYTES} bytes"
        ))
        .with("field", "password"));
    }
    Ok(())
}

fn salt() -> Result<SaltString> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| Error::unavailable(format!("the OS random generator failed: {e}")))?;
    SaltString::encode_b64(&bytes).map_err(|e| Error::internal(format!("salt encoding: {e}")))
}

fn hash_now(params: HashParams, password: &str) -> Result<String> {
    let salt = salt()?;
    params
        .argon2()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::internal(format!("password hashing failed: {e}")))
}

/// A PHC string for `password` (on a blocking thread).
pub(crate) async fn hash(params: HashParams, password: &str) -> Result<String> {
    check(password)?;
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || hash_now(params, &pw))
        .await
        .map_err(|e| Error::internal(format!("password hashing task failed: {e}")))?
}

/// What verifying a password found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Wrong password (or no such user).
    Wrong,
    /// Right, and the stored hash is as strong as `params`.
    Right,
    /// Right, but the stored hash is weaker than `params`: rehash it.
    RightButWeak,
}

/// The dummy hash verified for unknown users (same parameters, so the same work): made once
/// per parameter set, so an unknown user never costs an extra hash.
fn dummy(params: HashParams) -> String {
    static DUMMIES: OnceLock<Mutex<HashMap<HashParams, String>>> = OnceLock::new();
    let mut g = DUMMIES
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    g.entry(params)
        .or_insert_with(|| hash_now(params, "not a password of anyone").unwrap_or_default())
        .clone()
}

/// Verifies `password` against `stored` (a PHC string), or against the dummy hash when there
/// is none, on a blocking thread.
pub(crate) async fn verify(
    params: HashParams,
    stored: Option<String>,
    password: &str,
) -> Result<Verdict> {
    let pw = password.to_string();
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| dummy(params));
        let Ok(parsed) = PasswordHash::new(&phc) else {
            // A stored hash that is not a PHC string: nobody can log in with it.
            tracing::warn!("a stored password hash is not a PHC string; the login is refused");
            return Ok(Verdict::Wrong);
        };
        let ok = Argon2::default()
            .verify_password(pw.as_bytes(), &parsed)
            .is_ok();
        if !(ok && known) {
            return Ok(Verdict::Wrong);
        }
        let weak = match Params::try_from(&parsed) {
            Ok(p) => params.stronger_than(HashParams {
                memory_kib: p.m_cost(),
                iterations: p.t_cost(),
                parallelism: p.p_cost(),
            }),
            Err(_) => true,
        } || parsed.algorithm.as_str() != "argon2id";
        Ok(if weak {
            Verdict::RightButWeak
        } else {
            Verdict::Right
        })
    })
    .await
    .map_err(|e| Error::internal(format!("password verification task failed: {e}")))?
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEAK: HashParams = HashParams {
        memory_kib: 1024,
        iterations: 1,
        parallelism: 1,
    };

    #[tokio::test]
    async fn hashes_verify_and_weak_ones_ask_for_a_rehash() {
        let h = hash(WEAK, "correct horse").await.unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=1024,t=1,p=1$"), "{h}");
        assert_eq!(
            verify(WEAK, Some(h.clone()), "correct horse")
                .await
                .unwrap(),
            Verdict::Right
        );
        assert_eq!(
            verify(WEAK, Some(h.clone()), "wrong horse").await.unwrap(),
            Verdict::Wrong
        );
        let stronger = HashParams {
            memory_kib: 2048,
            ..WEAK
        };
        assert_eq!(
            verify(stronger, Some(h), "correct horse").await.unwrap(),
            Verdict::RightButWeak
        );
        assert_eq!(
            verify(WEAK, None, "correct horse").await.unwrap(),
            Verdict::Wrong
        );
        assert_eq!(
            verify(WEAK, Some("garbage".into()), "x").await.unwrap(),
            Verdict::Wrong
        );
    }

    #[test]
    fn password_errors_never_contain_the_password() {
        let e = check("abc12").unwrap_err();
        assert!(!e.to_string().contains("abc12"), "{e}");
        assert!(check(&"x".repeat(2000)).is_err());
        assert!(check("long enough").is_ok());
    }
}
