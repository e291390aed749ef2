//! Upstream providers: executors that relay a task to a model service, wait for it, and copy
//! the output into Plume's own storage.
//!
//! * [`gemini`]: Banana2 / BananaPro through Gemini `generateContent`, and `describe`;
//! * [`ark`]: seedream (`images/generations`) and seedance2 (content-generation tasks);
//! * [`veo`]: Veo through the Gemini API or Vertex AI (`predictLongRunning`);
//! * [`http`]: the shared request loop (timeouts, bounded retries with backoff and jitter)
//!   and the mapping of upstream errors to failures a chat user can act on;
//! * [`media`]: reading what providers return (MP4 duration, image size, data URIs).
//!
//! Every model id, base URL, key and timeout is configuration (`[providers.*]`), never code:
//! model ids retire (PROVIDERS.md §0). A category whose provider is not configured, or whose
//! key is missing, stays CATEGORY_UNAVAILABLE.

pub mod ark;
pub mod config;
pub mod gemini;
pub mod http;
pub mod media;
pub mod veo;
mod vertex_auth;

use crate::executor::{ExecContext, ExecError, Executors};
use plume_core::Category;
use std::sync::Arc;

pub use config::ProvidersConfig;

/// The executors the configuration asks for.
pub fn executors(config: &ProvidersConfig) -> anyhow::Result<Executors> {
    let mut set = Executors::new();
    if let Some(gemini) = &config.gemini {
        let client = gemini::GeminiImage::new(gemini, &config.retry)?;
        set = set
            .with(
                Category::Banana2,
                Arc::new(client.for_category(Category::Banana2)),
            )
            .with(
                Category::BananaPro,
                Arc::new(client.for_category(Category::BananaPro)),
            );
    }
    if let Some(ark) = &config.ark {
        if ark.seedream_model.is_some() {
            set = set.with(
                Category::Seedream,
                Arc::new(ark::Seedream::new(ark, &config.retry)?),
            );
        }
        if ark.seedance_model.is_some() {
            set = set.with(
                Category::Seedance2,
                Arc::new(ark::Seedance::new(ark, &config.retry)?),
            );
        }
    }
    if let Some(veo) = &config.veo {
        set = set.with(Category::Veo, Arc::new(veo::Veo::new(veo, &config.retry)?));
    }
    Ok(set)
}

/// The describer the configuration asks for, if any.
pub fn describer(config: &ProvidersConfig) -> anyhow::Result<Option<gemini::Describer>> {
    match &config.gemini {
        Some(g) if g.describe_model.is_some() => {
            Ok(Some(gemini::Describer::new(g, &config.retry)?))
        }
        _ => Ok(None),
    }
}

/// Reads an input image of the task and sniffs its type.
pub(crate) async fn input_image(
    ctx: &ExecContext,
    url: &str,
) -> Result<(bytes::Bytes, &'static str), ExecError> {
    let bytes = ctx.fetch_image(url).await?;
    let mime = crate::upload::ImageKind::sniff(&bytes)
        .map(|k| k.mime())
        .ok_or_else(|| {
            ExecError::permanent(
                "INPUT_INVALID",
                format!("{url} is not a JPEG, PNG, WebP or GIF image"),
            )
        })?;
    Ok((bytes, mime))
}
