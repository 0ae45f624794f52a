//! Passwords (argon2id, hashed off the async threads), login tokens (JWT HS256), site API keys
//! (random, stored as SHA-256), and the extractors that decide who is calling and which site
//! they may touch. Tenancy is decided here, once, by membership.

pub mod extract;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use jsonwebtoken::{DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::Db;
use crate::error::ApiError;

pub const SESSION_COOKIE: &str = "lk_session";
const API_KEY_PREFIX: &str = "lk_key_";

pub async fn hash_password(password: String) -> anyhow::Result<String> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("hashing a password: {e}"))
    })
    .await?
}

pub async fn verify_password(password: String, hash: String) -> anyhow::Result<bool> {
    tokio::task::spawn_blocking(move || {
        let parsed = PasswordHash::new(&hash).map_err(|e| anyhow::anyhow!("stored hash: {e}"))?;
        Ok(Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok())
    })
    .await?
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
}

pub enum TokenError {
    Expired,
    Invalid,
}

/// Signs and checks login tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    ttl: Duration,
}

impl TokenKeys {
    /// The secret comes from the settings or, when unset, is generated on first start and kept
    /// in the database so that tokens survive restarts.
    pub async fn load(db: &Db, configured: Option<&str>, ttl: Duration) -> anyhow::Result<Self> {
        let secret = match configured {
            Some(s) if !s.is_empty() => s.to_string(),
            _ => {
                db.init_setting("jwt_secret", &crate::domain::random_id(64))
                    .await?
            }
        };
        Ok(Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            ttl,
        })
    }

    pub fn issue(&self, account_id: &str) -> anyhow::Result<String> {
        let now = chrono::Utc::now().timestamp();
        let claims = Claims {
            sub: account_id.to_string(),
            iat: now,
            exp: now + self.ttl.as_secs() as i64,
        };
        Ok(jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &self.encoding,
        )?)
    }

    /// Signs a token with explicit times (tests use it to make expired tokens).
    pub fn issue_with_times(&self, account_id: &str, iat: i64, exp: i64) -> anyhow::Result<String> {
        let claims = Claims {
            sub: account_id.to_string(),
            iat,
            exp,
        };
        Ok(jsonwebtoken::encode(
            &Header::default(),
            &claims,
            &self.encoding,
        )?)
    }

    pub fn verify(&self, token: &str) -> Result<String, TokenError> {
        let mut validation = Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.leeway = 0;
        match jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation) {
            Ok(data) => Ok(data.claims.sub),
            Err(e) if matches!(e.kind(), jsonwebtoken::errors::ErrorKind::ExpiredSignature) => {
                Err(TokenError::Expired)
            }
            Err(_) => Err(TokenError::Invalid),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

/// A new API key and the hash under which it is stored.
pub fn new_api_key() -> (String, String) {
    let key = format!("{API_KEY_PREFIX}{}", crate::domain::random_id(40));
    let hash = hash_api_key(&key);
    (key, hash)
}

pub fn looks_like_api_key(token: &str) -> bool {
    token.starts_with(API_KEY_PREFIX)
}

pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Login attempts per account and per client IP.
pub struct LoginLimiter {
    per_account: DefaultKeyedRateLimiter<String>,
    per_ip: DefaultKeyedRateLimiter<std::net::IpAddr>,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        // Per account: a burst of 10, then one attempt per minute. (GCRA refills one cell per
        // period: `per_minute(10)` refills every 6 s and let an 11th attempt through within the
        // same minute.)
        let per_account = Quota::with_period(Duration::from_secs(60))
            .unwrap_or_else(|| Quota::per_minute(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::new(10).unwrap_or(NonZeroU32::MIN));
        let per_ip = Quota::per_minute(NonZeroU32::new(30).unwrap_or(NonZeroU32::MIN));
        Self {
            per_account: RateLimiter::keyed(per_account),
            per_ip: RateLimiter::keyed(per_ip),
        }
    }
}

impl LoginLimiter {
    pub fn check(&self, email: &str, ip: std::net::IpAddr) -> Result<(), ApiError> {
        // Answers with the time until the next attempt is allowed, in whole seconds rounded up.
        let refuse = |wait: Duration| {
            metrics::counter!("lookout_login_rate_limited_total").increment(1);
            ApiError::TooManyRequests {
                retry_after_secs: (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1),
            }
        };
        if let Err(not_until) = self.per_ip.check_key(&ip) {
            return Err(refuse(not_until.wait_time_from(self.per_ip.clock().now())));
        }
        let email = email.to_string();
        if let Err(not_until) = self.per_account.check_key(&email) {
            return Err(refuse(
                not_until.wait_time_from(self.per_account.clock().now()),
            ));
        }
        Ok(())
    }

    /// Forgets keys whose quota has fully recovered, so the maps stay small.
    pub fn prune(&self) {
        self.per_account.retain_recent();
        self.per_ip.retain_recent();
    }
}

pub type SharedTokenKeys = Arc<TokenKeys>;
