//! OAuth access tokens for Vertex AI from a service-account key: a JWT signed RS256 with the
//! key's private key, exchanged at the key's `token_uri`. Tokens are cached until shortly
//! before they expire.

use super::http::{exec_error, google_error, Upstream};
use crate::executor::ExecError;
use base64::Engine;
use ring::signature::{RsaKeyPair, RSA_PKCS1_SHA256};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::PrivatePkcs8KeyDer;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

pub struct TokenSource {
    client_email: String,
    token_uri: String,
    key: RsaKeyPair,
    cached: Mutex<Option<(String, Instant)>>,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSource({})", self.client_email)
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl TokenSource {
    /// Reads a service-account JSON key file.
    pub fn from_file(path: &std::path::Path) -> Result<TokenSource, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let json: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
        let field = |name: &str| {
            json.get(name)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("{} has no {name}", path.display()))
        };
        let pem = field("private_key")?;
        let der = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
            format!(
                "{}: private_key is not a PKCS#8 PEM key: {e}",
                path.display()
            )
        })?;
        let key = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
            .map_err(|e| format!("{}: private_key is not an RSA key: {e}", path.display()))?;
        Ok(TokenSource {
            client_email: field("client_email")?,
            token_uri: json
                .get("token_uri")
                .and_then(Value::as_str)
                .unwrap_or("https://oauth2.googleapis.com/token")
                .to_string(),
            key,
            cached: Mutex::new(None),
        })
    }

    fn assertion(&self) -> Result<String, ExecError> {
        let now = chrono::Utc::now().timestamp();
        let header = b64url(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = b64url(
            json!({"iss": self.client_email, "scope": SCOPE, "aud": self.token_uri, "iat": now, "exp": now + 3600})
                .to_string()
                .as_bytes(),
        );
        let message = format!("{header}.{claims}");
        let mut signature = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                message.as_bytes(),
                &mut signature,
            )
            .map_err(|_| {
                ExecError::permanent(
                    "NOT_CONFIGURED",
                    "signing the Vertex AI token request failed",
                )
            })?;
        Ok(format!("{message}.{}", b64url(&signature)))
    }

    /// A valid access token, from the cache or a fresh exchange.
    pub async fn token(&self, upstream: &Upstream) -> Result<String, ExecError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, expires)) = cached.as_ref() {
            if Instant::now() + Duration::from_secs(60) < *expires {
                return Ok(token.clone());
            }
        }
        let assertion = self.assertion()?;
        let form: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
            .append_pair("assertion", &assertion)
            .finish();
        let reply = upstream
            .json(|c| {
                c.post(&self.token_uri)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(form.clone())
            })
            .await
            .map_err(|f| exec_error(upstream, "oauth token", f, google_error))?;
        let token = reply
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                ExecError::permanent(
                    "UPSTREAM_AUTH",
                    "the token endpoint returned no access_token",
                )
            })?
            .to_string();
        let lifetime = reply
            .get("expires_in")
            .and_then(Value::as_u64)
            .unwrap_or(3600);
        *cached = Some((
            token.clone(),
            Instant::now() + Duration::from_secs(lifetime),
        ));
        Ok(token)
    }
}
