//! The operator's pages: overview (categories and their readiness, queue depth, the price
//! table, recent failures), users (search, top up with a reason, disable), top-up codes.
//! Reached only with an admin session; everyone else sees "Not found".

use super::{alert, check_csrf, encode, error_text, notice, page, when, PageAdmin};
use crate::http::AppState;
use crate::portal::{Portal, MAX_CODES_PER_ISSUE};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use serde_json::Value;
use std::collections::HashMap;

type Fields = HashMap<String, String>;

fn subnav() -> Markup {
    html! {
        nav.subnav aria-label="Admin" {
            a href="/admin" { "Overview" } a href="/admin/users" { "Users" } a href="/admin/codes" { "Top-up codes" }
        }
    }
}

pub async fn overview(State(s): State<AppState>, PageAdmin(admin): PageAdmin) -> Response {
    let o = match (Portal { service: &s }).overview().await {
        Ok(o) => o,
        Err(e) => return e.into_response(),
    };
    let empty = Vec::new();
    let list = |name: &str| {
        o.get(name)
            .and_then(Value::as_array)
            .unwrap_or(&empty)
            .clone()
    };
    let depth = o
        .get("queue_depth")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let prices = o
        .get("prices")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let str_of = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    page(
        &s,
        StatusCode::OK,
        "Operator overview",
        Some(&admin.session),
        html! {
            (subnav())
            h2 { "Categories" }
            div.table-wrap { table {
                thead { tr { th scope="col" { "Category" } th scope="col" { "Ready" } th scope="col" { "Queued" } th scope="col" { "Why not" } } }
                tbody { @for c in list("categories") {
                    @let name = str_of(&c, "name");
                    tr {
                        td { (name) }
                        td { @if c.get("ready") == Some(&Value::Bool(true)) { span.badge.good { "ready" } } @else { span.badge.bad { "unavailable" } } }
                        td.num { (depth.get(&name).and_then(Value::as_i64).unwrap_or(0)) }
                        td { (str_of(&c, "reason")) }
                    }
                } }
            } }
            h2 { "Recent failures" }
            @let failures = list("recent_failures");
            @if failures.is_empty() { p { "None." } } @else {
                div.table-wrap { table {
                    thead { tr { th scope="col" { "Task" } th scope="col" { "User" } th scope="col" { "Category" } th scope="col" { "Status" } th scope="col" { "Reason" } } }
                    tbody { @for f in &failures { tr {
                        td { (f.get("id").and_then(Value::as_i64).unwrap_or(0)) }
                        td { (str_of(f, "user_id")) }
                        td { (str_of(f, "category")) }
                        td { (str_of(f, "status_text")) }
                        td { (str_of(f, "error_code")) ": " (str_of(f, "error_message")) }
                    } } }
                } }
            }
            h2 { "Price table in force (credits)" }
            div.table-wrap { table {
                tbody { @for (name, price) in &prices { tr { th scope="row" { (name) } td.num { (price) } } } }
            } }
        },
    )
}

async fn users_page(
    s: &AppState,
    admin: &crate::http::session::PortalUser,
    query: &str,
    top: Markup,
    status: StatusCode,
) -> Response {
    let users = match (Portal { service: s }).users(query).await {
        Ok(u) => u,
        Err(e) => return e.into_response(),
    };
    let csrf = &admin.session.csrf_token;
    page(
        s,
        status,
        "Users",
        Some(&admin.session),
        html! {
            (subnav())
            (top)
            form.inline method="get" action="/admin/users" role="search" {
                label for="q" { "Search" }
                input id="q" name="q" type="search" value=(query) placeholder="email, name or id";
                button type="submit" { "Search" }
            }
            div.table-wrap { table {
                thead { tr { th scope="col" { "Id" } th scope="col" { "Email / name" } th scope="col" { "Role" } th scope="col" { "Credits" } th scope="col" { "Top up" } th scope="col" { "Access" } } }
                tbody { @for u in &users { tr data-user=(u.id) {
                    td { (u.id) }
                    td { (u.email.as_deref().unwrap_or(&u.name)) br; span.small { "since " (when(u.created_at)) } }
                    td { (u.role.as_str()) }
                    td.num data-role="balance" { (u.balance.unwrap_or(0)) }
                    td {
                        form.inline method="post" action={ "/admin/users/" (u.id) "/topup" } {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="q" value=(query);
                            label.visually-hidden for={ "amount-" (u.id) } { "Credits to add for user " (u.id) }
                            input id={ "amount-" (u.id) } name="amount" type="number" min="1" max="1000000000" required size="6";
                            label.visually-hidden for={ "reason-" (u.id) } { "Reason" }
                            input id={ "reason-" (u.id) } name="reason" type="text" required maxlength="200" placeholder="reason";
                            button type="submit" { "Add" }
                        }
                    }
                    td {
                        form method="post" action={ "/admin/users/" (u.id) "/disable" } {
                            input type="hidden" name="csrf" value=(csrf);
                            input type="hidden" name="q" value=(query);
                            input type="hidden" name="disabled" value=(if u.disabled { "false" } else { "true" });
                            @if u.disabled { span.badge.bad { "disabled" } " " button.secondary type="submit" { "Enable" } }
                            @else { button.secondary type="submit" { "Disable" } }
                        }
                    }
                } } }
            } }
        },
    )
    .into_response()
}

pub async fn users(
    State(s): State<AppState>,
    PageAdmin(admin): PageAdmin,
    Query(q): Query<Fields>,
) -> Response {
    let query = q.get("q").cloned().unwrap_or_default();
    users_page(&s, &admin, &query, html! {}, StatusCode::OK).await
}

pub async fn topup(
    State(s): State<AppState>,
    PageAdmin(admin): PageAdmin,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(e) = check_csrf(&admin, f.get("csrf")) {
        return e.into_response();
    }
    let query = f.get("q").cloned().unwrap_or_default();
    let id = id.parse::<i64>().unwrap_or(0);
    let amount = f
        .get("amount")
        .and_then(|a| a.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let reason = f.get("reason").map(String::as_str).unwrap_or("");
    match (Portal { service: &s })
        .admin_topup(id, amount, reason)
        .await
    {
        Ok(balance) => {
            tracing::info!(
                admin = admin.session.user_id,
                user_id = id,
                amount,
                "operator top-up"
            );
            let top = notice(&format!(
                "Added {amount} credits to user {id}; balance {balance}."
            ));
            users_page(&s, &admin, &query, top, StatusCode::OK).await
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            users_page(&s, &admin, &query, alert(&error_text(&e)), status).await
        }
    }
}

pub async fn disable(
    State(s): State<AppState>,
    PageAdmin(admin): PageAdmin,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(e) = check_csrf(&admin, f.get("csrf")) {
        return e.into_response();
    }
    let id = id.parse::<i64>().unwrap_or(0);
    let disabled = f.get("disabled").map(String::as_str) != Some("false");
    if let Err(e) = (Portal { service: &s })
        .set_user_disabled(id, disabled)
        .await
    {
        return e.into_response();
    }
    let query = f.get("q").cloned().unwrap_or_default();
    Redirect::to(&format!("/admin/users?q={}", encode(&query))).into_response()
}

fn codes_form(csrf: &str) -> Markup {
    html! {
        form.stack method="post" action="/admin/codes" {
            input type="hidden" name="csrf" value=(csrf);
            label for="count" { "How many codes" }
            input id="count" name="count" type="number" min="1" max=(MAX_CODES_PER_ISSUE) value="1" required;
            label for="amount" { "Credits each" }
            input id="amount" name="amount" type="number" min="1" max="1000000000" required;
            label for="note" { "Note (optional)" }
            input id="note" name="note" type="text" maxlength="200";
            button type="submit" { "Issue codes" }
        }
    }
}

pub async fn codes_page(State(s): State<AppState>, PageAdmin(admin): PageAdmin) -> Response {
    page(
        &s,
        StatusCode::OK,
        "Top-up codes",
        Some(&admin.session),
        html! { (subnav()) (codes_form(&admin.session.csrf_token)) },
    )
}

pub async fn issue_codes(
    State(s): State<AppState>,
    PageAdmin(admin): PageAdmin,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(e) = check_csrf(&admin, f.get("csrf")) {
        return e.into_response();
    }
    let number = |k: &str| {
        f.get(k)
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0)
    };
    let (count, amount) = (number("count"), number("amount"));
    let result = (Portal { service: &s })
        .issue_codes(count, amount, f.get("note").map(String::as_str))
        .await;
    let (top, status) = match result {
        Ok(codes) => (
            html! {
                section.newkey {
                    h2 { (codes.len()) " codes of " (amount) " credits" }
                    p { strong { "Copy them now: they are shown only this once." } }
                    pre id="codes" { @for c in &codes { (c) "\n" } }
                    button type="button" data-copy="codes" { "Copy codes" }
                }
            },
            StatusCode::OK,
        ),
        Err(e) => (
            alert(&error_text(&e)),
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
        ),
    };
    page(
        &s,
        status,
        "Top-up codes",
        Some(&admin.session),
        html! { (subnav()) (top) (codes_form(&admin.session.csrf_token)) },
    )
}
