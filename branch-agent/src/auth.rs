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
use protocol::codes::OperatorId;
use protocol::people::{authorize, Denied, DocFamily, Function, Person, Right};
use protocol::session_token;
use serde::Deserialize;
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
    /// Only the status page (a sign-in hint without a session) and sign-in.
    Public,
    Needs(Function, Right),
    /// Documents: the guard asks for `right` on some document family; the handler, once
    /// it knows the document's type, asks again for that family (`allow_family`).
    Docs(Right),
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
    let person = match signed_in(&web, req.headers()) {
        Ok(p) => p,
        Err(why) => return unauthorized(req.uri().path(), &why),
    };
    let here = Some(web.shared.store.identity().branch);
    let verdict = match access {
        Access::Public => Ok(()),
        Access::Needs(function, right) => authorize(&person, function, right, here),
        // Some family must allow it; the first refusal is the reason when none does.
        Access::Docs(right) => {
            let families = [
                Function::PurchasingDocs,
                Function::SalesDocs,
                Function::RetailDocs,
                Function::WarehouseDocs,
                Function::ConsignmentDocs,
                Function::LoanDocs,
                Function::FinanceDocs,
                Function::LedgerDocs,
            ];
            let mut first = None;
            let mut any = false;
            for f in families {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub login: OperatorId,
    pub password: String,
}

/// `POST /api/session`: a bearer token and the same token as a page cookie.
pub async fn sign_in(State(web): State<AgentWeb>, edge::api::ApiJson(req): edge::api::ApiJson<SignIn>) -> Response {
    let wrong = || refusal(StatusCode::UNAUTHORIZED, "wrong login or password");
    let Some(entry) = web.shared.store.person(&req.login) else { return wrong() };
    let phc = entry.password_phc.clone();
    let Ok(ok) = tokio::task::spawn_blocking(move || session_token::verify_password(&req.password, &phc)).await else {
        return refusal(StatusCode::INTERNAL_SERVER_ERROR, "the password check failed");
    };
    if !ok {
        tracing::warn!(login = %entry.person.login, "failed sign-in");
        return wrong();
    }
    if entry.person.disabled {
        return refusal(StatusCode::FORBIDDEN, Denied::Disabled { login: entry.person.login });
    }
    let now = edge::now_unix();
    let ttl = edge::session::SESSION_TTL_SECS;
    let token = session_token::mint(&web.session_key, &entry.person.login, now, ttl, edge::session::random_bytes());
    tracing::info!(login = %entry.person.login, "signed in");
    let roles: Vec<_> = entry.person.roles.iter().map(|r| r.name()).collect();
    (
        [(header::SET_COOKIE, edge::session::session_cookie(&token, ttl))],
        Json(json!({ "token": token, "expires_unix": now + ttl, "login": entry.person.login, "roles": roles })),
    )
        .into_response()
}

/// A sign-in form for pages: posts JSON to `/api/session` (the cookie comes back) and
/// reloads.
pub const SIGN_IN_FORM: &str = "<form id=signin><input name=login placeholder=login autocomplete=username> \
<input name=password type=password placeholder=password autocomplete=current-password> <button>Sign in</button></form><p id=msg></p>\
<script>document.getElementById('signin').onsubmit=async e=>{e.preventDefault();const f=new FormData(e.target);\
const r=await fetch('/api/session',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({login:f.get('login'),password:f.get('password')})});\
if(r.ok){location.reload()}else{document.getElementById('msg').textContent=(await r.json()).error}}</script>";
