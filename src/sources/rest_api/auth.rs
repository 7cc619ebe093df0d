//! Authentication of REST requests: bearer tokens, API keys (header or query), HTTP basic,
//! and OAuth2 client credentials with the token cached and refreshed before it expires.
//!
//! Every credential is registered with the redactor when the source opens, and each access
//! token as it is obtained, so no message can echo one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use crate::secrets::{Redactor, Secret};

use super::config::{ApiKeyLocation, AuthConfig};

/// A ready-to-use credential. Its `Debug` names the kind only.
pub enum Auth {
    None,
    Bearer(String),
    ApiKeyHeader { name: String, value: String },
    ApiKeyQuery { name: String, value: String },
    Basic { username: String, password: String },
    OAuth2(OAuth2),
}

/// OAuth2 client credentials and the current token.
pub struct OAuth2 {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub scope: Option<String>,
    pub extra: BTreeMap<String, String>,
    pub default_lifetime: Duration,
    /// Held across the token request, so concurrent pages wait for one refresh.
    pub token: tokio::sync::Mutex<Option<Token>>,
}

/// An access token and when floe stops using it.
#[derive(Clone)]
pub struct Token {
    pub value: String,
    /// Expiry minus a safety margin: a token is refreshed *before* the server would refuse it.
    pub refresh_at: Instant,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::None => "Auth::None",
            Auth::Bearer(_) => "Auth::Bearer(***)",
            Auth::ApiKeyHeader { .. } => "Auth::ApiKeyHeader(***)",
            Auth::ApiKeyQuery { .. } => "Auth::ApiKeyQuery(***)",
            Auth::Basic { .. } => "Auth::Basic(***)",
            Auth::OAuth2(_) => "Auth::OAuth2(***)",
        })
    }
}

impl Token {
    pub fn new(value: String, lifetime: Duration) -> Token {
        // Capped so an absurd `expires_in` cannot overflow the clock.
        let lifetime = lifetime.min(Duration::from_secs(365 * 86_400));
        // A fifth of the lifetime, at most a minute: short-lived tokens still get used.
        let margin = (lifetime / 5).min(Duration::from_secs(60));
        Token { value, refresh_at: Instant::now() + lifetime.saturating_sub(margin) }
    }

    pub fn is_fresh(&self) -> bool {
        Instant::now() < self.refresh_at
    }
}

impl Auth {
    /// Build from the config, registering every secret with `redactor`.
    pub fn from_config(config: Option<&AuthConfig>, redactor: &mut Redactor) -> Auth {
        // A secret can come back in other forms: URL-encoded in an echoed query or form.
        let mut secret = |s: &str| {
            redactor.add(&Secret::new(s.to_string()));
            let encoded = url_encoded(s);
            if encoded != s {
                redactor.add(&Secret::new(encoded));
            }
        };
        match config {
            None => Auth::None,
            Some(AuthConfig::Bearer { token }) => {
                secret(token);
                Auth::Bearer(token.clone())
            }
            Some(AuthConfig::ApiKey { name, api_key, location }) => {
                secret(api_key);
                let name = name.clone().unwrap_or_else(|| "Authorization".to_string());
                match location.unwrap_or(ApiKeyLocation::Header) {
                    ApiKeyLocation::Header => Auth::ApiKeyHeader { name, value: api_key.clone() },
                    ApiKeyLocation::Query => Auth::ApiKeyQuery { name, value: api_key.clone() },
                }
            }
            Some(AuthConfig::HttpBasic { username, password }) => {
                secret(password);
                // The Authorization header carries base64("user:password").
                secret(&base64(format!("{username}:{password}").as_bytes()));
                Auth::Basic { username: username.clone(), password: password.clone() }
            }
            Some(AuthConfig::Oauth2ClientCredentials { access_token_url, client_id, client_secret, scopes, access_token_request_data, default_token_expiration }) => {
                secret(client_secret);
                for v in access_token_request_data.values() {
                    // Extra token-request fields are often secrets too (assertions, passwords).
                    secret(v);
                }
                Auth::OAuth2(OAuth2 {
                    token_url: access_token_url.clone(),
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    scope: scopes.as_ref().map(|s| s.as_slice().join(" ")).filter(|s| !s.is_empty()),
                    extra: access_token_request_data.clone(),
                    default_lifetime: Duration::from_secs(default_token_expiration.unwrap_or(3600)),
                    token: tokio::sync::Mutex::new(None),
                })
            }
        }
    }
}

/// `application/x-www-form-urlencoded` form of a value.
fn url_encoded(s: &str) -> String {
    let mut u = reqwest12::Url::parse("http://x/").unwrap_or_else(|_| unreachable!("static URL"));
    u.query_pairs_mut().append_pair("k", s);
    u.query().and_then(|q| q.strip_prefix("k=")).unwrap_or(s).to_string()
}

/// Standard base64 with padding (what HTTP basic auth sends).
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl OAuth2 {
    /// The form fields of a token request.
    pub fn form(&self) -> Vec<(String, String)> {
        let mut form = vec![
            ("grant_type".to_string(), "client_credentials".to_string()),
            ("client_id".to_string(), self.client_id.clone()),
            ("client_secret".to_string(), self.client_secret.clone()),
        ];
        if let Some(scope) = &self.scope {
            form.push(("scope".to_string(), scope.clone()));
        }
        form.extend(self.extra.iter().map(|(k, v)| (k.clone(), v.clone())));
        form
    }

    /// Read a token response: `access_token` and optional `expires_in` (seconds).
    pub fn parse_token(&self, body: &[u8]) -> Option<Token> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let value = v.get("access_token")?.as_str()?.to_string();
        let lifetime = match v.get("expires_in") {
            Some(serde_json::Value::Number(n)) => n.as_f64().and_then(|s| Duration::try_from_secs_f64(s.min(1e9)).ok()),
            Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok().and_then(|s| Duration::try_from_secs_f64(s.min(1e9)).ok()),
            _ => None,
        }
        .filter(|d| !d.is_zero())
        .unwrap_or(self.default_lifetime);
        Some(Token::new(value, lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_refresh_before_they_expire() {
        let t = Token::new("x".into(), Duration::from_secs(10));
        assert!(t.is_fresh());
        assert!(t.refresh_at <= Instant::now() + Duration::from_secs(8));
        let t = Token::new("x".into(), Duration::ZERO);
        assert!(!t.is_fresh());
    }

    #[test]
    fn debug_output_hides_credentials() {
        let mut r = Redactor::default();
        let cfg = AuthConfig::Bearer { token: "sekret-token".into() };
        let a = Auth::from_config(Some(&cfg), &mut r);
        assert!(!format!("{a:?}").contains("sekret"));
    }

    #[test]
    fn secrets_are_registered() {
        let mut r = Redactor::default();
        let cfg = AuthConfig::HttpBasic { username: "u".into(), password: "hunter22".into() };
        let _ = Auth::from_config(Some(&cfg), &mut r);
        assert_eq!(r.redact("pw hunter22"), "pw ***");
        assert_eq!(base64(b"u:canary-password-c0de"), "dTpjYW5hcnktcGFzc3dvcmQtYzBkZQ==");
        assert_eq!(base64(b"ab"), "YWI=");
        assert_eq!(url_encoded("a b&c"), "a+b%26c");
    }
}
