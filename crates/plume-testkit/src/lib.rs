//! The test harness's executor: a scripted stand-in for a model or an upstream provider.
//!
//! `plume-test-server` is `plume-server` with this executor registered for the categories in
//! `PLUME_TEST_EXECUTORS` (all seven when unset, none when `none`). Its behaviour is written
//! in the task's prompt, as space-separated directives, so one server can play every outcome:
//!
//! * `sleep=MS`: take this long;
//! * `fail=WORDS_WITH_UNDERSCORES`: fail permanently with that message;
//! * `retry=N`: fail with a retryable error on the first N attempts;
//! * `late=MS`: store the result, then take this long before answering (a crash or a cancel
//!   in between leaves a file no result names: the server must collect it);
//! * `upstream`: act like a long-running upstream job: record one submission in
//!   `$PLUME_TEST_UPSTREAM_DIR/<task id>` (appending a line), save the job id on the task,
//!   and on a later attempt resume the saved job instead of submitting again.
//!
//! Input images are fetched through the server's fetcher (so the SSRF policy applies) and
//! the output is each input inverted, as a PNG of the same size; with no input, a 64×48
//! gradient. Video categories store a small placeholder file as `.mp4`.

use async_trait::async_trait;
use bytes::Bytes;
use plume_core::{Category, CategoryKind, ValidatedContent};
use plume_server::{
    ExecContext, ExecError, ExecOutput, Executor, Executors, OutputImage, OutputVideo,
};
use std::io::Cursor;
use std::sync::Arc;
use std::time::Duration;

pub mod backends;
pub mod fake_feishu;
pub mod fake_model;
pub mod fake_telegram;
pub mod fake_upstream;
pub mod tls;

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Script {
    pub sleep_ms: u64,
    pub fail: Option<String>,
    pub retry: u32,
    pub upstream: bool,
    pub late_ms: u64,
}

impl Script {
    pub fn parse(prompt: Option<&str>) -> Script {
        let mut script = Script::default();
        for word in prompt.unwrap_or("").split_whitespace() {
            match word.split_once('=') {
                Some(("sleep", ms)) => script.sleep_ms = ms.parse().unwrap_or(0),
                Some(("fail", why)) => script.fail = Some(why.replace('_', " ")),
                Some(("retry", n)) => script.retry = n.parse().unwrap_or(0),
                Some(("late", ms)) => script.late_ms = ms.parse().unwrap_or(0),
                None if word == "upstream" => script.upstream = true,
                _ => {}
            }
        }
        script
    }
}

pub struct ScriptedExecutor;

fn png_bytes(img: &image::RgbaImage) -> Result<Bytes, ExecError> {
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| ExecError::permanent("ENCODE_FAILED", e.to_string()))?;
    Ok(Bytes::from(out.into_inner()))
}

#[async_trait]
impl Executor for ScriptedExecutor {
    async fn execute(
        &self,
        content: &ValidatedContent,
        ctx: &ExecContext,
    ) -> Result<ExecOutput, ExecError> {
        let script = Script::parse(content.prompt.as_deref());
        if let Ok(log) = std::env::var("PLUME_TEST_EXEC_LOG") {
            use std::io::Write;
            let line = format!("{} {}\n", ctx.task_id, ctx.attempt);
            let _ = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .and_then(|mut f| f.write_all(line.as_bytes()));
        }
        if script.upstream {
            if ctx.upstream_job().is_none() {
                let dir = std::env::var("PLUME_TEST_UPSTREAM_DIR").map_err(|_| {
                    ExecError::permanent("TEST_SETUP", "PLUME_TEST_UPSTREAM_DIR is not set")
                })?;
                let path = std::path::Path::new(&dir).join(ctx.task_id.to_string());
                let mut line = std::fs::read_to_string(&path).unwrap_or_default();
                line.push_str("submitted\n");
                std::fs::write(&path, line)
                    .map_err(|e| ExecError::permanent("TEST_SETUP", e.to_string()))?;
                ctx.save_upstream_job(serde_json::json!({"job": format!("job-{}", ctx.task_id)}))
                    .await?;
            }
            ctx.set_progress(10).await;
        }
        if script.sleep_ms > 0 {
            tokio::time::sleep(Duration::from_millis(script.sleep_ms)).await;
        }
        if ctx.attempt <= script.retry {
            return Err(ExecError::retryable(
                "UPSTREAM_UNAVAILABLE",
                format!("scripted retryable failure on attempt {}", ctx.attempt),
            ));
        }
        if let Some(why) = script.fail {
            return Err(ExecError::permanent("UPSTREAM_REFUSED", why));
        }
        if content.category.kind() == CategoryKind::Video {
            let key = ctx
                .store_output(
                    Bytes::from_static(b"\x00\x00\x00\x18ftypmp42 placeholder"),
                    "mp4",
                )
                .await?;
            return Ok(ExecOutput::Videos {
                parts: vec![OutputVideo {
                    key: key.to_string(),
                    duration: content.duration_seconds.unwrap_or(5) as f64,
                    mime: "video/mp4".into(),
                    poster_key: None,
                }],
            });
        }
        let mut images = Vec::new();
        for url in &content.image_urls {
            let bytes = ctx.fetch_image(url).await?;
            let mut img = image::load_from_memory(&bytes)
                .map_err(|e| {
                    ExecError::permanent(
                        "INPUT_INVALID",
                        format!("the input image cannot be decoded: {e}"),
                    )
                })?
                .to_rgba8();
            image::imageops::invert(&mut img);
            images.push(img);
        }
        if images.is_empty() {
            images.push(image::RgbaImage::from_fn(64, 48, |x, y| {
                image::Rgba([x as u8 * 4, y as u8 * 5, 128, 255])
            }));
        }
        let mut outputs = Vec::new();
        for img in images {
            let key = ctx.store_output(png_bytes(&img)?, "png").await?;
            outputs.push(OutputImage {
                key: key.to_string(),
                width: img.width(),
                height: img.height(),
                mime: "image/png".into(),
            });
        }
        if script.late_ms > 0 {
            tokio::time::sleep(Duration::from_millis(script.late_ms)).await;
        }
        Ok(ExecOutput::Images { images: outputs })
    }
}

/// The scripted executor for the categories `PLUME_TEST_EXECUTORS` names.
pub fn executors_from_env() -> Executors {
    let wanted = std::env::var("PLUME_TEST_EXECUTORS").unwrap_or_default();
    let categories: Vec<Category> = match wanted.trim() {
        "" => Category::ALL.to_vec(),
        "none" => Vec::new(),
        list => list
            .split(',')
            .filter_map(|c| Category::parse(c.trim()))
            .collect(),
    };
    let executor: Arc<dyn Executor> = Arc::new(ScriptedExecutor);
    categories
        .into_iter()
        .fold(Executors::new(), |set, c| set.with(c, executor.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_parse() {
        let s = Script::parse(Some(
            "draw sleep=250 retry=2 fail=no_such_model upstream late=40",
        ));
        assert_eq!(
            s,
            Script {
                sleep_ms: 250,
                fail: Some("no such model".into()),
                retry: 2,
                upstream: true,
                late_ms: 40,
            }
        );
        assert_eq!(Script::parse(None), Script::default());
    }
}
