//! Who is calling the branch's local API, and may they: sign-in (`POST /api/session`,
//! checked against the people HQ sent in the profile, so it works offline), the guard
//! every route of `crate::routes` passes, and the cross-site door.
//!
//! The cross-site door (a layer over the whole router): a POST, PUT or DELETE must be
//! `Content-Type: application/json` (415 otherwise: a form or `text/plain` POST from any
//! web page needs no CORS preflight) and an `Origin`, if sent, must be this agent's own
//! (403). Then the guard: no or bad token → 401, refused by `protocol::people::authorize`
//! → 403 with its reason; the handler never runs, so nothing changes. Must not decide
//! rights itself nor touch the journal.

use std::sync::Arc;

use axum::extract::{FromRef, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use protocol::people::{authorize, Denied, DocFamily, Function, Person, Right};
use protocol::session_token;
use serde_json::json;

use crate::forwarder::Shared;
use crate::till::Pos;

/// The router's state: the branch, its till and this process's session key.
#[derive(Clone)]
pub struct AgentWeb {
    pub shared: Arc<Shared>,
    pub pos: Arc<Pos>,
    pub session_key: Arc<[u8; 32]>,
}

impl FromRef<AgentWeb> for Arc<Shared> {
    fn from_ref(w: &AgentWeb) -> Arc<Shared> {
        w.shared.clone()
    }
}

impl FromRef<AgentWeb> for Arc<Pos> {
    fn from_ref(w: &AgentWeb) -> Arc<Pos> {
        w.pos.clone()
    }
}

/// Who may call a route (always at this branch).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Only the status page (a sign-in hint without a session), sign-in, and the probes
    /// `/healthz` and `/readyz` (no data).
    Public,
    Needs(Function, Right),
    /// Documents: the guard asks for `right` on some document family; the handler, once
    /// it knows the document's type, asks again for that family (`allow_family`).
    Docs(Right),
    /// `/metrics`: agent.toml's `metrics_token` as a bearer token, or else a person with
    /// Reports:View here.
    Scrape,
}

/// The signed-in person, put into the request's extensions by the guard.
#[derive(Clone, Debug)]
pub struct Session {
    pub person: Person,
}

/// A refusal as JSON `{"error": …}`.
pub fn refusal(status: StatusCode, why: impl std::fmt::Display) -> Response {
    (status, Json(json!({ "error": why.to_string() }))).into_response()
}

/// The person a request's token names, if the token is good and the person known here.
pub fn signed_in(web: &AgentWeb, headers: &HeaderMap) -> Result<Person, String> {
    let text = |h| headers.get(h).and_then(|v| v.to_str().ok());
    let token = edge::session::token_from_headers(text(header::AUTHORIZATION), text(header::COOKIE))
        .ok_or("sign in first: POST /api/session {\"login\",\"password\"}, then send `Authorization: Bearer TOKEN`")?;
    let claims = session_token::verify(&web.session_key, token, edge::now_unix()).map_err(|e| e.to_string())?;
    let entry =
        web.shared.store.person(&claims.login).ok_or_else(|| format!("{} is not known at this branch; sign in again", claims.login))?;
    Ok(entry.person)
}

/// May `person` do `right` on the documents of `family` here?
pub fn allow_family(web_branch: protocol::codes::BranchCode, person: &Person, family: DocFamily, right: Right) -> Result<(), Denied> {
    authorize(person, Function::docs(family), right, Some(web_branch))
}

fn unauthorized(path: &str, why: &str) -> Response {
    if path.starts_with("/api/") {
        return refusal(StatusCode::UNAUTHORIZED, why);
    }
    // A page: the same refusal, with a form to sign in and come back.
    let esc = why.replace('&', "&amp;").replace('<', "&lt;");
    let page = format!(
        "<!doctype html><meta charset=utf-8><title>Sign in</title><style>body{{font-family:sans-serif;margin:2em}}</style>\
         <h1>Sign in</h1><p>{esc}</p>{SIGN_IN_FORM}"
    );
    (StatusCode::UNAUTHORIZED, Html(page)).into_response()
}

/// The guard of one route: authenticate, authorize, then run the handler.
pub async fn guard(State((web, access)): State<(AgentWeb, Access)>, mut req: Request, next: Next) -> Response {
    if access == Access::Public {
        return next.run(req).await;
    }
    let access = match access {
        Access::Scrape if web.shared.metrics.scrape_token_is(req.headers()) => return next.run(req).await,
        Access::Scrape => Access::Needs(Function::Reports, Right::View),
        other => other,
    };
    let person = match signed_in(&web, req.headers()) {
        Ok(p) => p,
        Err(why) => return unauthorized(req.uri().path(), &why),
    };
    let here = Some(web.shared.store.identity().branch);
    let verdict = match access {
        Access::Public | Access::Scrape => Ok(()),
        Access::Needs(function, right) => authorize(&person, function, right, here),
        // Some family must allow it; the first refusal is the reason when none does.
        Access::Docs(right) => {
            let mut first = None;
            let mut any = false;
            for f in Function::ALL.into_iter().filter(|f| f.is_docs()) {
                match authorize(&person, f, right, here) {
                    Ok(()) => any = true,
                    Err(e) => first = first.or(Some(e)),
                }
            }
            match (any, first) {
                (false, Some(e)) => Err(e),
                _ => Ok(()),
            }
        }
    };
    if let Err(denied) = verdict {
        return refusal(StatusCode::FORBIDDEN, denied);
    }
    req.extensions_mut().insert(Session { person });
    next.run(req).await
}

/// The cross-site door over the whole router (see the module header).
pub async fn same_site(req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")));
    if !json {
        return refusal(StatusCode::UNSUPPORTED_MEDIA_TYPE, "this API takes Content-Type: application/json only");
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
        let own = format!("http://{host}");
        if origin.to_str().ok() != Some(own.as_str()) {
            return refusal(StatusCode::FORBIDDEN, format!("cross-site request refused: Origin {origin:?} is not {own}"));
        }
    }
    next.run(req).await
}

/// `POST /api/session`: a bearer token and the same token as a page cookie, for a person
/// of the branch's profile (so sign-in works offline).
pub async fn sign_in(State(web): State<AgentWeb>, edge::api::ApiJson(req): edge::api::ApiJson<SignIn>) -> Response {
    let entry = web.shared.store.person(&req.login);
    edge::sign_in::answer(&web.session_key, entry, req).await
}

pub use edge::sign_in::{SignIn, SIGN_IN_FORM};
