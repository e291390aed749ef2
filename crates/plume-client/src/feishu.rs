//! Downloading a Feishu message image by its image key, with the Feishu app credentials that
//! OpenClaw's `openclaw.json` holds (`channels.feishu`, or one of its `accounts`).

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::time::Duration;

fn credentials(openclaw: &Value, account: Option<&str>) -> Result<(String, String, String)> {
    let feishu = openclaw
        .pointer("/channels/feishu")
        .context("openclaw.json has no channels.feishu section")?;
    let section = match account {
        Some(name) => feishu
            .pointer(&format!("/accounts/{name}"))
            .with_context(|| format!("openclaw.json has no Feishu account {name:?}"))?,
        None => match feishu.get("accounts").and_then(Value::as_object) {
            Some(accounts) if feishu.get("appId").is_none() && accounts.len() == 1 => {
                accounts.values().next().unwrap_or(feishu)
            }
            _ => feishu,
        },
    };
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| {
                section
                    .get(*n)
                    .or_else(|| feishu.get(*n))
                    .and_then(Value::as_str)
            })
            .map(String::from)
    };
    let app_id = field(&["appId", "app_id"]).context("the Feishu config has no appId")?;
    let secret =
        field(&["appSecret", "app_secret"]).context("the Feishu config has no appSecret")?;
    let domain = field(&["domain"]).unwrap_or_else(|| "https://open.feishu.cn".into());
    let domain = match domain.as_str() {
        "feishu" => "https://open.feishu.cn".to_string(),
        "lark" => "https://open.larksuite.com".to_string(),
        d => d.trim_end_matches('/').to_string(),
    };
    Ok((app_id, secret, domain))
}

/// The image's bytes.
pub async fn download_image(
    openclaw: &Value,
    account: Option<&str>,
    image_key: &str,
) -> Result<Vec<u8>> {
    if image_key.is_empty()
        || !image_key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        bail!("{image_key:?} is not a Feishu image key");
    }
    let (app_id, secret, domain) = credentials(openclaw, account)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()?;
    let token: Value = http
        .post(format!(
            "{domain}/open-apis/auth/v3/tenant_access_token/internal"
        ))
        .json(&json!({"app_id": app_id, "app_secret": secret}))
        .send()
        .await
        .context("cannot reach Feishu")?
        .json()
        .await
        .context("Feishu's token answer is not JSON")?;
    let Some(token) = token.get("tenant_access_token").and_then(Value::as_str) else {
        bail!(
            "Feishu refused the app credentials: {}",
            token
                .get("msg")
                .and_then(Value::as_str)
                .unwrap_or("no reason")
        );
    };
    let response = http
        .get(format!("{domain}/open-apis/im/v1/images/{image_key}"))
        .bearer_auth(token)
        .send()
        .await
        .context("cannot reach Feishu")?;
    if !response.status().is_success() {
        bail!(
            "Feishu answered HTTP {} for image {image_key}",
            response.status()
        );
    }
    Ok(response.bytes().await?.to_vec())
}
