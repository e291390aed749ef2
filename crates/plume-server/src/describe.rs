//! `POST /api/open/describe`: what an image shows, from the configured vision-language
//! model. Free of charge, and under the same URL policy as task inputs.

use crate::service::Service;

impl Service {
    /// `POST /api/open/describe`: fetches the image under the URL policy and asks the
    /// configured vision-language model about it. Free of charge.
    pub async fn describe(
        &self,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, crate::error::ApiError> {
        use crate::error::ApiError;
        use plume_core::ErrorCode;
        let url = body
            .get("image_url")
            .and_then(|v| v.as_str())
            .map(str::trim)
            .unwrap_or("");
        if url.is_empty() {
            return Err(ApiError::field("image_url", "is required"));
        }
        plume_core::content::check_image_url(url, "image_url")?;
        let focus = match body.get("focus") {
            None | Some(serde_json::Value::Null) => "general",
            Some(serde_json::Value::String(f))
                if ["general", "style", "text", "objects"].contains(&f.as_str()) =>
            {
                f.as_str()
            }
            Some(_) => {
                return Err(ApiError::field(
                    "focus",
                    "must be one of general, style, text, objects",
                ))
            }
        };
        let describer = self.describer.as_ref().ok_or_else(|| {
            ApiError::new(
                ErrorCode::CategoryUnavailable,
                "describe is unavailable: no vision-language provider is configured",
            )
        })?;
        describer.readiness().map_err(|why| {
            ApiError::new(
                ErrorCode::CategoryUnavailable,
                format!("describe is unavailable: {why}"),
            )
        })?;
        self.fetcher
            .check(url)
            .await
            .map_err(|e| ApiError::field("image_url", e.to_string()))?;
        let bytes = self
            .fetcher
            .fetch(url)
            .await
            .map_err(|e| ApiError::field("image_url", e.to_string()))?;
        let mime = crate::upload::ImageKind::sniff(&bytes)
            .map(|k| k.mime())
            .ok_or_else(|| ApiError::field("image_url", "not a JPEG, PNG, WebP or GIF image"))?;
        let (description, tokens) = describer.describe(&bytes, mime, focus).await.map_err(|e| {
            if e.code == "CONTENT_POLICY" {
                ApiError::field("image_url", e.message)
            } else {
                ApiError::new(ErrorCode::InternalError, e.message)
            }
        })?;
        Ok(
            serde_json::json!({"description": description, "model": describer.model, "tokens_used": tokens}),
        )
    }
}
