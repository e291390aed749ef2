//! Task pages: the gallery, one task, and "Try it" (a task made from the browser). Cards and
//! the task page carry `data-task` and `data-status`; portal.js long-polls
//! `/api/portal/tasks/{id}?wait=` for those still running and updates them in place.

use super::{alert, check_csrf, error_text, not_found_page, page, when, PageUser};
use crate::db::TaskRecord;
use crate::error::ApiError;
use crate::http::AppState;
use crate::portal::Portal;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use bytes::BytesMut;
use maud::{html, Markup};
use plume_core::{Category, CategoryKind, TaskView};
use serde_json::Value;
use std::collections::HashMap;

/// The first image a task shows: its result image, or a video's poster.
fn thumbnail(view: &TaskView) -> Option<(String, bool)> {
    let r = &view.result;
    if let Some(url) = r.get("imageUrl").and_then(Value::as_str) {
        return Some((url.to_string(), false));
    }
    let part = r.get("parts").and_then(|p| p.get(0))?;
    match part.get("posterUrl").and_then(Value::as_str) {
        Some(poster) => Some((poster.to_string(), false)),
        None => part
            .get("videoUrl")
            .and_then(Value::as_str)
            .map(|v| (v.to_string(), true)),
    }
}

fn prompt_of(view: &TaskView) -> String {
    view.content
        .get("prompt")
        .and_then(Value::as_str)
        .map(|p| p.chars().take(140).collect())
        .unwrap_or_default()
}

fn status_badge(view: &TaskView) -> Markup {
    html! {
        span class={ "badge status-" (view.status_text) } data-role="status" { (view.status_text) }
    }
}

/// The gallery's grid of task cards.
pub fn task_cards(s: &AppState, tasks: &[TaskRecord]) -> Markup {
    html! {
        ul.gallery {
            @for t in tasks {
                @let view = s.task_view(t);
                li.card data-task=(view.id) data-status=(view.status) {
                    a.thumb href={ "/tasks/" (view.id) } aria-label={ "Task " (view.id) ", " (view.category) ", " (view.status_text) } {
                        @match thumbnail(&view) {
                            Some((_, false)) => img src={ "/tasks/" (view.id) "/thumb" } alt={ "Result of task " (view.id) } loading="lazy" data-role="thumb";
                            Some((url, true)) => video src=(url) preload="metadata" muted data-role="thumb" {},
                            None => span.placeholder data-role="thumb" { (view.category) },
                        }
                    }
                    div.meta {
                        div { strong { (view.category) } " " (status_badge(&view)) }
                        div.small { "#" (view.id) " · " (view.credits_cost) " credits · " (when(t.created_at)) }
                        @let prompt = prompt_of(&view);
                        @if !prompt.is_empty() { div.small.prompt { (prompt) } }
                        p.error data-role="error" { @if let Some(e) = &view.error { (e.message) } }
                    }
                }
            }
        }
    }
}

pub async fn gallery(
    State(s): State<AppState>,
    PageUser(user): PageUser,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let before = q.get("before").and_then(|b| b.parse::<i64>().ok());
    let tasks = match (Portal { service: &s })
        .tasks(&user.session, before, 24)
        .await
    {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    page(
        &s,
        StatusCode::OK,
        "Your tasks",
        Some(&user.session),
        html! {
            @if tasks.is_empty() {
                p { "No tasks here yet. " a href="/try" { "Try Plume" } "." }
            } @else {
                (task_cards(&s, &tasks))
                @if tasks.len() == 24 {
                    @if let Some(last) = tasks.last() {
                        p { a href={ "/tasks?before=" (last.id) } { "Older tasks" } }
                    }
                }
            }
        },
    )
}

fn results(view: &TaskView) -> Markup {
    let r = &view.result;
    html! {
        div.results data-role="results" {
            @if let Some(urls) = r.get("imageUrls").and_then(Value::as_array) {
                @for (i, url) in urls.iter().filter_map(Value::as_str).enumerate() {
                    figure {
                        img src=(url) alt={ "Result image " (i + 1) " of task " (view.id) };
                        figcaption { a href=(url) download { "Download image " (i + 1) } }
                    }
                }
            }
            @if let Some(parts) = r.get("parts").and_then(Value::as_array) {
                @for (i, part) in parts.iter().enumerate() {
                    @if let Some(url) = part.get("videoUrl").and_then(Value::as_str) {
                        figure {
                            video src=(url) controls preload="metadata" poster=[part.get("posterUrl").and_then(Value::as_str)] {}
                            figcaption { a href=(url) download { "Download video " (i + 1) } }
                        }
                    }
                }
            }
        }
    }
}

/// A task's thumbnail (owner only), made on first view: see [`crate::portal::thumbs`].
pub async fn thumb(
    State(s): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = plume_core::parse_task_id(&id) else {
        return not_found_page(&s, Some(&user.session));
    };
    let task = match s.get_task(user.session.user_id, id, None).await {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    match crate::portal::thumbs::thumbnail(&s, &task).await {
        Ok(Some(jpeg)) => (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "private, max-age=86400"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            jpeg,
        )
            .into_response(),
        Ok(None) => ApiError::not_found("thumbnail").into_response(),
        Err(e) => e.into_response(),
    }
}

pub async fn task_page(
    State(s): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
) -> Response {
    let Some(id) = plume_core::parse_task_id(&id) else {
        return not_found_page(&s, Some(&user.session));
    };
    let task = match s.get_task(user.session.user_id, id, None).await {
        Ok(t) => t,
        Err(e) if e.code == plume_core::ErrorCode::NotFound => {
            return not_found_page(&s, Some(&user.session))
        }
        Err(e) => return e.into_response(),
    };
    let view = s.task_view(&task);
    let content = serde_json::to_string_pretty(&view.content).unwrap_or_default();
    page(
        &s,
        StatusCode::OK,
        &format!("Task {id}"),
        Some(&user.session),
        html! {
            section.task data-task=(view.id) data-status=(view.status) {
                dl.facts {
                    dt { "Status" } dd { (status_badge(&view)) }
                    dt { "Progress" } dd { progress max="100" value=(view.progress) data-role="progress" { (view.progress) "%" } }
                    dt { "Category" } dd { (view.category) }
                    dt { "Cost" } dd { (view.credits_cost) " credits" }
                    dt { "Created" } dd { (when(task.created_at)) }
                    dt { "Finished" } dd data-role="finished" { @if let Some(f) = task.finished_at { (when(f)) } @else { "not yet" } }
                }
                p.error data-role="error" { @if let Some(e) = &view.error { (e.code) ": " (e.message) } }
                (results(&view))
                details { summary { "Request content" } pre { (content) } }
            }
            p { a href="/tasks" { "All tasks" } }
        },
    )
}

fn try_form(s: &AppState, csrf: &str, error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error { (alert(e)) }
        p { "Make one task from the browser, as your assistant would. It costs the same credits." }
        form.stack method="post" action="/try" enctype="multipart/form-data" {
            input type="hidden" name="csrf" value=(csrf);
            label for="category" { "What to do" }
            select id="category" name="category" required {
                @for c in Category::ALL {
                    @let ready = s.executors.ready(c).is_ok();
                    option value=(c.as_str()) disabled[!ready] {
                        (c.as_str()) " — " (match c.kind() { CategoryKind::Image => "make an image", CategoryKind::Edit => "edit one image", CategoryKind::Video => "make a video" })
                        @if !ready { " (unavailable here)" }
                    }
                }
            }
            label for="prompt" { "Prompt" }
            textarea id="prompt" name="prompt" rows="3" maxlength="4000" placeholder="a cat in Pixar style" {}
            label for="image" { "Image (optional for image and video, required for edits)" }
            input id="image" name="image" type="file" accept="image/png,image/jpeg,image/webp,image/gif";
            label for="image_url" { "…or an image URL" }
            input id="image_url" name="image_url" type="url" placeholder="https://…";
            button type="submit" { "Create task" }
        }
    }
}

pub async fn try_page(State(s): State<AppState>, PageUser(user): PageUser) -> Response {
    page(
        &s,
        StatusCode::OK,
        "Try it",
        Some(&user.session),
        try_form(&s, &user.session.csrf_token, None),
    )
}

/// Reads the try-it form: its text fields, and the image's bytes when one was chosen.
async fn read_try_form(
    s: &AppState,
    mut multipart: Multipart,
) -> Result<(HashMap<String, String>, Option<bytes::Bytes>), ApiError> {
    let max = s.config.limits.upload_max_bytes;
    let mut fields = HashMap::new();
    let mut image = None;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(crate::http::api::multipart_error)?
    {
        let name = field.name().unwrap_or("").to_string();
        let mut data = BytesMut::new();
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(crate::http::api::multipart_error)?
        {
            if data.len() as u64 + chunk.len() as u64 > max {
                return Err(ApiError::field(
                    "image",
                    format!("the file is larger than the limit of {max} bytes"),
                ));
            }
            data.extend_from_slice(&chunk);
        }
        if name == "image" {
            if !data.is_empty() {
                image = Some(data.freeze());
            }
        } else if fields.len() < 16 && data.len() <= 16 * 1024 {
            fields.insert(name, String::from_utf8_lossy(&data).into_owned());
        }
    }
    Ok((fields, image))
}

async fn create_from_form(
    s: &AppState,
    user: &crate::http::session::PortalUser,
    multipart: Multipart,
) -> Result<i64, ApiError> {
    let (fields, image) = read_try_form(s, multipart).await?;
    check_csrf(user, fields.get("csrf"))?;
    let name = fields.get("category").map(String::as_str).unwrap_or("");
    let category = Category::parse(name)
        .ok_or_else(|| ApiError::field("category", Category::unknown_message(name)))?;
    let mut image_url = fields
        .get("image_url")
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty());
    if let Some(bytes) = image {
        let stored = s.upload(bytes).await?;
        image_url = stored
            .get("file_url")
            .and_then(Value::as_str)
            .map(String::from);
    }
    let mut options = plume_core::BuildOptions {
        prompt: fields.get("prompt").cloned(),
        ..Default::default()
    };
    match (category.kind(), image_url) {
        (CategoryKind::Video, Some(url)) => options.first_frame_url = Some(url),
        (_, Some(url)) => options.image_urls = vec![url],
        (_, None) => {}
    }
    let content = plume_core::build_content(category, &options)?;
    let body =
        serde_json::json!({ "category": category.as_str(), "content": content, "title": "Try it" });
    let (task, _) = s.create_task(user.session.user_id, &body, None).await?;
    Ok(task.id)
}

pub async fn try_submit(
    State(s): State<AppState>,
    PageUser(user): PageUser,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let result = match multipart {
        Ok(m) => create_from_form(&s, &user, m).await,
        Err(e) => Err(ApiError::field("form", e.body_text())),
    };
    match result {
        Ok(id) => Redirect::to(&format!("/tasks/{id}")).into_response(),
        Err(e) => page(
            &s,
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            "Try it",
            Some(&user.session),
            try_form(&s, &user.session.csrf_token, Some(&error_text(&e))),
        ),
    }
}
