//! remove-bg and remove-watermark on this server's CPU, through `plume-vision`.
//!
//! The model work runs on a blocking thread; the vision crate bounds concurrent inferences.
//! Without the model files the categories stay CATEGORY_UNAVAILABLE with a message naming
//! `scripts/setup-models`, and the server still starts.

use crate::executor::{ExecContext, ExecError, ExecOutput, Executor, Executors, OutputImage};
use async_trait::async_trait;
use plume_core::{Category, ValidatedContent};
use plume_vision::{Vision, VisionError};
use std::sync::Arc;

fn vision_error(e: VisionError) -> ExecError {
    match e {
        VisionError::BadImage(why) => ExecError::permanent(
            "INPUT_INVALID",
            format!("the input image cannot be read: {why}"),
        ),
        VisionError::Unavailable(why) => ExecError::permanent(
            "MODEL_UNAVAILABLE",
            format!("the model is not available on this server: {why}"),
        ),
        VisionError::Model(why) => ExecError::permanent(
            "MODEL_FAILED",
            format!("the model failed on this image: {why}"),
        ),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VisionError> + Send + 'static,
) -> Result<T, ExecError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ExecError::permanent("MODEL_FAILED", format!("the model crashed: {e}")))?
        .map_err(vision_error)
}

pub struct RemoveBackground(pub Arc<Vision>);

#[async_trait]
impl Executor for RemoveBackground {
    fn readiness(&self) -> Result<(), String> {
        self.0.matte_ready()
    }

    async fn execute(
        &self,
        content: &ValidatedContent,
        ctx: &ExecContext,
    ) -> Result<ExecOutput, ExecError> {
        let input = ctx.fetch_image(&content.image_urls[0]).await?;
        let vision = self.0.clone();
        let (png, width, height) =
            blocking(move || plume_vision::matte::remove_background(&vision, &input)).await?;
        let key = ctx.store_output(png.into(), "png").await?;
        Ok(ExecOutput::Images {
            images: vec![OutputImage {
                key: key.to_string(),
                width,
                height,
                mime: "image/png".into(),
            }],
        })
    }
}

pub struct RemoveWatermark(pub Arc<Vision>);

#[async_trait]
impl Executor for RemoveWatermark {
    fn readiness(&self) -> Result<(), String> {
        self.0.text_ready()
    }

    async fn execute(
        &self,
        content: &ValidatedContent,
        ctx: &ExecContext,
    ) -> Result<ExecOutput, ExecError> {
        let input = ctx.fetch_image(&content.image_urls[0]).await?;
        let vision = self.0.clone();
        let regions = content.regions.clone();
        let removal =
            blocking(move || plume_vision::watermark::remove_watermark(&vision, &input, &regions))
                .await?;
        let (ext, mime) = match removal.format {
            image::ImageFormat::Jpeg => ("jpg", "image/jpeg"),
            image::ImageFormat::WebP => ("webp", "image/webp"),
            image::ImageFormat::Gif => ("gif", "image/gif"),
            _ => ("png", "image/png"),
        };
        let key = ctx.store_output(removal.bytes.into(), ext).await?;
        Ok(ExecOutput::Images {
            images: vec![OutputImage {
                key: key.to_string(),
                width: removal.width,
                height: removal.height,
                mime: mime.into(),
            }],
        })
    }
}

/// The local executors, sharing one set of model sessions.
pub fn executors(vision: Arc<Vision>) -> Executors {
    Executors::new()
        .with(
            Category::RemoveBg,
            Arc::new(RemoveBackground(vision.clone())),
        )
        .with(Category::RemoveWatermark, Arc::new(RemoveWatermark(vision)))
}
