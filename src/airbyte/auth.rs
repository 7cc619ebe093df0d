//! Credentials for Airbyte's API: a fixed bearer token, or client credentials exchanged for
//! short-lived access tokens that are cached and refreshed before they expire.
//!
//! `auth: token`: the secret is the bearer token. `auth: client_credentials`: the secret holds
//! `CLIENT_ID:CLIENT_SECRET`; floe posts them to `applications/token` (public API:
//! `POST <workspace_url>/v1/applications/token {client_id, client_secret, grant-type}` →
//! `{access_token, token_type, expires_in}`; config API: `POST /api/v1/applications/token
//! {client_id, client_secret}` → `{access_token}`, which states no lifetime, so Airbyte's
//! default of 15 minutes is assumed). A token is refreshed a little before `expires_in` runs
//! out, and once more if Airbyte answers 401 anyway (clock drift, revoked token).

use std::time::{Duration, Instant};

use crate::config::manifest::AirbyteAuth;
use crate::secrets::Secret;

/// Airbyte's default application-token lifetime (`DEFAULT_AUTH_APP_TOKEN_EXPIRATION_MINS`).
pub const DEFAULT_TOKEN_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// What floe authenticates with.
#[derive(Clone)]
pub enum Credentials {
    /// A bearer token used as is.
    Bearer(Secret),
    /// An Airbyte application's client id and secret.
    Client { id: Secret, secret: Secret },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Bearer(_) => f.write_str("Bearer(***)"),
            Credentials::Client { .. } => f.write_str("Client(***)"),
        }
    }
}

/// Why a secret cannot be used as credentials. Never contains the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCredentials(pub String);

impl Credentials {
    /// Interpret the resolved secret for the configured `auth`.
    pub fn from_secret(auth: AirbyteAuth, secret: &Secret, reference: &str) -> Result<Credentials, BadCredentials> {
        let value = secret.expose().trim();
        if value.is_empty() {
            return Err(BadCredentials(format!("secret `{reference}` is empty")));
        }
        if value.chars().any(|c| c.is_control()) {
            return Err(BadCredentials(format!("secret `{reference}` contains control characters, which cannot be sent in an HTTP header")));
        }
        match auth {
            AirbyteAuth::Token => Ok(Credentials::Bearer(Secret::new(value.to_string()))),
            AirbyteAuth::ClientCredentials => match value.split_once(':') {
                Some((id, secret)) if !id.is_empty() && !secret.is_empty() => {
                    Ok(Credentials::Client { id: Secret::new(id.to_string()), secret: Secret::new(secret.to_string()) })
                }
                _ => Err(BadCredentials(format!(
                    "with `auth: client_credentials` the secret `{reference}` must hold CLIENT_ID:CLIENT_SECRET (an Airbyte application's id and secret, joined by a colon)"
                ))),
            },
        }
    }

    pub fn refreshable(&self) -> bool {
        matches!(self, Credentials::Client { .. })
    }
}

/// A cached access token and when to replace it.
#[derive(Clone)]
pub struct CachedToken {
    pub value: Secret,
    pub refresh_at: Instant,
}

impl CachedToken {
    /// A token obtained at `requested_at` (the moment the token request was sent, so the
    /// lifetime is never overestimated) that Airbyte says lives `expires_in`.
    pub fn new(value: Secret, requested_at: Instant, expires_in: Option<Duration>) -> CachedToken {
        let lifetime = expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME);
        CachedToken { value, refresh_at: requested_at + lifetime.saturating_sub(refresh_margin(lifetime)) }
    }

    pub fn fresh(&self, now: Instant) -> bool {
        now < self.refresh_at
    }
}

/// How long before expiry a token is replaced: a fifth of its life, at most a minute.
pub fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 5).min(Duration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_credentials_need_a_colon() {
        let ok = Credentials::from_secret(AirbyteAuth::ClientCredentials, &Secret::new("id:sec:ret".into()), "r");
        assert!(matches!(ok, Ok(Credentials::Client { ref id, ref secret }) if id.expose() == "id" && secret.expose() == "sec:ret"));
        let bad = Credentials::from_secret(AirbyteAuth::ClientCredentials, &Secret::new("no-colon-value".into()), "r");
        assert!(matches!(&bad, Err(BadCredentials(m)) if !m.contains("no-colon-value")));
        assert!(Credentials::from_secret(AirbyteAuth::Token, &Secret::new("  ".into()), "r").is_err());
    }

    #[test]
    fn margins() {
        assert_eq!(refresh_margin(Duration::from_secs(900)), Duration::from_secs(60));
        assert_eq!(refresh_margin(Duration::from_secs(5)), Duration::from_secs(1));
        let now = Instant::now();
        let t = CachedToken::new(Secret::new("t".into()), now, Some(Duration::from_secs(10)));
        assert!(t.fresh(now + Duration::from_secs(7)));
        assert!(!t.fresh(now + Duration::from_secs(8)));
    }
}
