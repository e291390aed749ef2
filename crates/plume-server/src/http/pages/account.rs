//! Pages of one's account: the start page, sign-up and sign-in, keys, credits.

use super::tasks::task_cards;
use super::{alert, check_csrf, error_text, notice, page, safe_next, when, PageUser};
use crate::http::session::{clear_cookie, set_cookie, ClientAddress, MaybeUser};
use crate::http::AppState;
use crate::portal::{views, KeyInfo, Portal, Session, SignupMode, MIN_PASSWORD_CHARS};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::{html, Markup};
use std::collections::HashMap;

type Fields = HashMap<String, String>;

pub async fn home(State(s): State<AppState>, MaybeUser(user): MaybeUser) -> Response {
    let Some(user) = user else {
        return page(
            &s,
            StatusCode::OK,
            "Plume Platform",
            None,
            html! {
                p.lead { "Make and edit images and videos from your chat: Plume runs the work, your OpenClaw assistant brings the result back." }
                p { a.button href="/signup" { "Create an account" } " " a href="/login" { "Sign in" } }
                p { "With an account you get an API key for the plume-image skill, credits, and a gallery of everything you made." }
            },
        );
    };
    let portal = Portal { service: &s };
    let balance =
        s.db.balance(user.session.user_id)
            .await
            .ok()
            .flatten()
            .unwrap_or(0);
    let keys = portal.keys(&user.session).await.unwrap_or_default();
    let tasks = portal
        .tasks(&user.session, None, 6)
        .await
        .unwrap_or_default();
    let active = keys.iter().filter(|k| !k.disabled).count();
    page(
        &s,
        StatusCode::OK,
        "Your Plume",
        Some(&user.session),
        html! {
            div.stats {
                div.stat { span.label { "Credits" } span.value id="balance" { (balance) } a href="/credits" { "Top up" } }
                div.stat { span.label { "Active keys" } span.value { (active) } a href="/keys" { "Manage keys" } }
            }
            @if active == 0 {
                (notice("Next step: create an API key and paste it into OpenClaw."))
            }
            h2 { "Recent tasks" }
            @if tasks.is_empty() {
                p { "Nothing yet. " a href="/try" { "Try Plume from the browser" } ", or ask your assistant to draw something." }
            } @else {
                (task_cards(&s, &tasks))
                p { a href="/tasks" { "All tasks" } }
            }
            h2 { "Sessions" }
            form method="post" action="/logout" {
                input type="hidden" name="csrf" value=(user.session.csrf_token);
                input type="hidden" name="everywhere" value="1";
                p.hint { "Lost a device, or signed in somewhere you should not have?" }
                button.secondary type="submit" { "Sign out everywhere" }
            }
        },
    )
}

fn signup_form(s: &AppState, error: Option<&str>, email: &str) -> Markup {
    let mode = s.config.portal.signup;
    html! {
        @if let Some(e) = error { (alert(e)) }
        @if mode == SignupMode::Closed {
            p { "Sign-up is closed on this server. Ask its operator for an account." }
        } @else {
            form.stack method="post" action="/signup" {
                label for="email" { "Email" }
                input id="email" name="email" type="email" autocomplete="email" required value=(email);
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="new-password" required minlength=(MIN_PASSWORD_CHARS);
                small { "At least " (MIN_PASSWORD_CHARS) " characters." }
                @if mode == SignupMode::Invite {
                    label for="invite_code" { "Invite code" }
                    input id="invite_code" name="invite_code" type="text" required autocomplete="off";
                }
                button type="submit" { "Create account" }
            }
            p { "Have an account? " a href="/login" { "Sign in" } }
        }
    }
}

pub async fn signup_page(State(s): State<AppState>) -> Response {
    page(
        &s,
        StatusCode::OK,
        "Create your account",
        None,
        signup_form(&s, None, ""),
    )
}

fn signed_in_redirect(s: &AppState, to: &str, new: &crate::portal::NewSession) -> Response {
    let mut response = Redirect::to(to).into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, set_cookie(s, new));
    response
}

pub async fn signup(
    State(s): State<AppState>,
    _: ClientAddress,
    Form(f): Form<Fields>,
) -> Response {
    let email = f.get("email").map(String::as_str).unwrap_or("");
    let result = Portal { service: &s }
        .signup(
            email,
            f.get("password").map(String::as_str).unwrap_or(""),
            f.get("invite_code").map(String::as_str),
        )
        .await;
    match result {
        Ok((_, new)) => signed_in_redirect(&s, "/keys", &new),
        Err(e) => page(
            &s,
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
            "Create your account",
            None,
            signup_form(&s, Some(&error_text(&e)), email),
        ),
    }
}

fn login_form(error: Option<&str>, email: &str, next: &str) -> Markup {
    html! {
        @if let Some(e) = error { (alert(e)) }
        form.stack method="post" action="/login" {
            input type="hidden" name="next" value=(next);
            label for="email" { "Email" }
            input id="email" name="email" type="email" autocomplete="username" required value=(email);
            label for="password" { "Password" }
            input id="password" name="password" type="password" autocomplete="current-password" required;
            button type="submit" { "Sign in" }
        }
        p { "New here? " a href="/signup" { "Create an account" } }
    }
}

pub async fn login_page(State(s): State<AppState>, Query(q): Query<Fields>) -> Response {
    let next = safe_next(q.get("next"));
    page(
        &s,
        StatusCode::OK,
        "Sign in",
        None,
        login_form(None, "", &next),
    )
}

pub async fn login(
    State(s): State<AppState>,
    ClientAddress(address): ClientAddress,
    Form(f): Form<Fields>,
) -> Response {
    let email = f.get("email").map(String::as_str).unwrap_or("");
    let next = safe_next(f.get("next"));
    let result = Portal { service: &s }
        .login(
            email,
            f.get("password").map(String::as_str).unwrap_or(""),
            &address,
        )
        .await;
    match result {
        Ok((_, new)) => signed_in_redirect(&s, &next, &new),
        Err(e) => {
            let mut response = page(
                &s,
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST),
                "Sign in",
                None,
                login_form(Some(&error_text(&e)), email, &next),
            );
            if let Some(wait) = e.retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, wait.into());
            }
            response
        }
    }
}

pub async fn logout(
    State(s): State<AppState>,
    PageUser(user): PageUser,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(e) = check_csrf(&user, f.get("csrf")) {
        return e.into_response();
    }
    let portal = Portal { service: &s };
    if f.get("everywhere").map(String::as_str) == Some("1") {
        if let Err(e) = portal.logout_elsewhere(&user.session, &user.token).await {
            return e.into_response();
        }
    }
    if let Err(e) = portal.logout(&user.token).await {
        return e.into_response();
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, clear_cookie(&s));
    response
}

fn keys_body(session: &Session, keys: &[KeyInfo], top: Markup) -> Markup {
    html! {
        (top)
        form method="post" action="/keys" {
            input type="hidden" name="csrf" value=(session.csrf_token);
            button type="submit" { "Create a new key" }
        }
        h2 { "Your keys" }
        @if keys.is_empty() {
            p { "No keys yet." }
        } @else {
            div.table-wrap {
                table {
                    thead { tr { th scope="col" { "Key" } th scope="col" { "Created" } th scope="col" { "Last used" } th scope="col" { "Status" } th scope="col" { span.visually-hidden { "Actions" } } } }
                    tbody {
                        @for k in keys {
                            tr {
                                td { code { (k.prefix) "…" } }
                                td { (when(k.created_at)) }
                                td { @if let Some(t) = k.last_used_at { (when(t)) } @else { "never" } }
                                td { @if k.disabled { span.badge.bad { "disabled" } } @else { span.badge.good { "active" } } }
                                td {
                                    @if !k.disabled {
                                        form method="post" action={ "/keys/" (k.id) "/disable" } {
                                            input type="hidden" name="csrf" value=(session.csrf_token);
                                            button.secondary type="submit" aria-label={ "Disable key " (k.prefix) } { "Disable" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub async fn keys_page(State(s): State<AppState>, PageUser(user): PageUser) -> Response {
    match (Portal { service: &s }).keys(&user.session).await {
        Ok(keys) => page(
            &s,
            StatusCode::OK,
            "API keys",
            Some(&user.session),
            keys_body(&user.session, &keys, html! {}),
        ),
        Err(e) => e.into_response(),
    }
}

pub async fn create_key(
    State(s): State<AppState>,
    PageUser(user): PageUser,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(e) = check_csrf(&user, f.get("csrf")) {
        return e.into_response();
    }
    let portal = Portal { service: &s };
    let top = match portal.create_key(&user.session).await {
        Ok(new) => {
            let (snippet, env) = views::key_setup(&new.key, &s.config.public_base);
            html! {
                section.newkey aria-labelledby="newkey-title" {
                    h2 id="newkey-title" { "Your new key" }
                    p { strong { "Copy it now: it is shown only this once." } }
                    div.copyrow {
                        code id="new-key" { (new.key) }
                        button type="button" data-copy="new-key" { "Copy key" }
                    }
                    h3 { "In OpenClaw's " code { "openclaw.json" } }
                    p { "Merge this into " code { "~/.openclaw/openclaw.json" } ":" }
                    pre id="openclaw-snippet" { (snippet) }
                    button type="button" data-copy="openclaw-snippet" { "Copy openclaw.json snippet" }
                    h3 { "Or in " code { "~/.openclaw/.env" } }
                    pre id="env-lines" { (env) }
                    button type="button" data-copy="env-lines" { "Copy .env lines" }
                }
            }
        }
        Err(e) => alert(&error_text(&e)),
    };
    let keys = portal.keys(&user.session).await.unwrap_or_default();
    page(
        &s,
        StatusCode::OK,
        "API keys",
        Some(&user.session),
        keys_body(&user.session, &keys, top),
    )
}

pub async fn disable_key(
    State(s): State<AppState>,
    PageUser(user): PageUser,
    Path(id): Path<String>,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(e) = check_csrf(&user, f.get("csrf")) {
        return e.into_response();
    }
    let id = id.parse::<i64>().unwrap_or(0);
    match (Portal { service: &s })
        .disable_key(&user.session, id)
        .await
    {
        Ok(()) => Redirect::to("/keys").into_response(),
        Err(e) => e.into_response(),
    }
}

async fn credits(s: &AppState, user: &Session, top: Markup, status: StatusCode) -> Response {
    let (balance, entries) = match (Portal { service: s }).ledger(user, None, 200).await {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    page(
        s,
        status,
        "Credits",
        Some(user),
        html! {
            (top)
            div.stats { div.stat { span.label { "Balance" } span.value id="balance" { (balance) } } }
            h2 { "Redeem a top-up code" }
            form.inline method="post" action="/credits/redeem" {
                input type="hidden" name="csrf" value=(user.csrf_token);
                label for="code" { "Code" }
                input id="code" name="code" type="text" required autocomplete="off" placeholder="PLUME-XXXXX-XXXXX-XXXXX-XXXXX";
                button type="submit" { "Redeem" }
            }
            h2 { "Ledger" }
            @if entries.is_empty() { p { "No entries yet." } } @else {
                div.table-wrap {
                    table {
                        thead { tr { th scope="col" { "When" } th scope="col" { "Kind" } th scope="col" { "Credits" } th scope="col" { "Task" } th scope="col" { "Note" } } }
                        tbody {
                            @for e in &entries {
                                tr {
                                    td { (when(e.created_at)) }
                                    td { (e.kind) }
                                    td.num { @if matches!(e.kind.as_str(), "topup" | "refund") { "+" } @else if e.kind == "reserve" { "−" } @else { "" } (e.amount) }
                                    td { @if let Some(t) = e.task_id { a href={ "/tasks/" (t) } { "#" (t) } } }
                                    td { (e.note.as_deref().unwrap_or("")) }
                                }
                            }
                        }
                    }
                }
                p.hint { "A task reserves its cost when created; success captures it, failure, timeout or cancel refunds it." }
            }
        },
    )
}

pub async fn credits_page(State(s): State<AppState>, PageUser(user): PageUser) -> Response {
    credits(&s, &user.session, html! {}, StatusCode::OK).await
}

pub async fn redeem(
    State(s): State<AppState>,
    PageUser(user): PageUser,
    Form(f): Form<Fields>,
) -> Response {
    if let Err(e) = check_csrf(&user, f.get("csrf")) {
        return e.into_response();
    }
    let code = f.get("code").map(String::as_str).unwrap_or("");
    match (Portal { service: &s }).redeem(&user.session, code).await {
        Ok((amount, _)) => {
            credits(
                &s,
                &user.session,
                notice(&format!("Added {amount} credits.")),
                StatusCode::OK,
            )
            .await
        }
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            credits(&s, &user.session, alert(&error_text(&e)), status).await
        }
    }
}
