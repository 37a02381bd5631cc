//! Who is calling HQ's HTTP API, and may they: sign-in (`POST /api/session`) and the
//! guard every route of the table passes before its handler runs.
//!
//! The guard reads the session token (bearer header, or the cookie pages carry), checks
//! it with the process's session key, finds the person in HQ's people, and asks
//! `protocol::people::authorize` about the route's function, right and branch. No or bad
//! token → 401; refused → 403 with `Denied`'s text; either way the handler never runs,
//! so nothing changes. Must not decide rights itself, nor touch the store beyond reading
//! people.

use std::sync::Arc;

use axum::extract::{FromRef, Query, RawPathParams, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum::RequestExt;
use protocol::codes::{BranchCode, OperatorId};
use protocol::people::{authorize, Function, Person, Right};
use protocol::session_token;
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use crate::server::{now_unix, Hq};

/// The router's state: HQ and this process's session key.
#[derive(Clone)]
pub struct Web {
    pub hq: Arc<Hq>,
    pub session_key: Arc<[u8; 32]>,
}

impl FromRef<Web> for Arc<Hq> {
    fn from_ref(web: &Web) -> Arc<Hq> {
        web.hq.clone()
    }
}

/// Which branch a route acts on, for `authorize`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// All branches (HQ-wide): people at HQ only.
    Hq,
    /// The `{code}` in the path.
    PathBranch,
    /// The `branch` query parameter; HQ-wide without one.
    QueryBranch,
}

/// Who may call a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No token needed: only the status page (which then shows a sign-in hint) and
    /// sign-in itself.
    Public,
    Needs {
        function: Function,
        right: Right,
        target: Target,
    },
}

impl Access {
    pub const fn needs(function: Function, right: Right, target: Target) -> Access {
        Access::Needs { function, right, target }
    }
}

/// The signed-in person, put into the request's extensions by the guard.
#[derive(Clone, Debug)]
pub struct Session {
    pub person: Person,
}

fn unauthorized(why: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::UNAUTHORIZED, why.to_string())
}

/// The person a request's token names, if the token is good and the person known.
pub fn signed_in(web: &Web, headers: &HeaderMap) -> Result<Person, ApiError> {
    let text = |h| headers.get(h).and_then(|v| v.to_str().ok());
    let token = edge::session::token_from_headers(text(header::AUTHORIZATION), text(header::COOKIE)).ok_or_else(|| {
        unauthorized("sign in first: POST /api/session {\"login\",\"password\"}, then send `Authorization: Bearer TOKEN`")
    })?;
    let claims = session_token::verify(&web.session_key, token, now_unix()).map_err(unauthorized)?;
    let st = web.hq.state();
    let entry =
        st.people.get(&claims.login).ok_or_else(|| unauthorized(format!("{} is no longer known here; sign in again", claims.login)))?;
    Ok(entry.person.clone())
}

#[derive(Deserialize)]
struct BranchParam {
    branch: Option<String>,
}

/// The guard of one route: authenticate, authorize, then run the handler.
pub async fn guard(State((web, access)): State<(Web, Access)>, mut req: Request, next: Next) -> Response {
    let Access::Needs { function, right, target } = access else {
        return next.run(req).await;
    };
    let person = match signed_in(&web, req.headers()) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let branch = match target {
        Target::Hq => None,
        Target::PathBranch => {
            let params = req.extract_parts::<RawPathParams>().await.ok();
            let code = params.as_ref().and_then(|p| p.iter().find(|(k, _)| *k == "code").map(|(_, v)| v.to_string()));
            match code.map(BranchCode::new) {
                Some(Ok(c)) => Some(c),
                _ => return super::bad("the path names no valid branch code").into_response(),
            }
        }
        Target::QueryBranch => match Query::<BranchParam>::try_from_uri(req.uri()).ok().and_then(|q| q.0.branch) {
            Some(b) => match BranchCode::new(b) {
                Ok(c) => Some(c),
                Err(e) => return super::bad(e).into_response(),
            },
            None => None,
        },
    };
    if let Err(denied) = authorize(&person, function, right, branch) {
        return ApiError(StatusCode::FORBIDDEN, denied.to_string()).into_response();
    }
    req.extensions_mut().insert(Session { person });
    next.run(req).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub login: OperatorId,
    pub password: String,
}

/// `POST /api/session`: a bearer token and the same token as a page cookie.
pub async fn sign_in(State(web): State<Web>, edge::api::ApiJson(req): edge::api::ApiJson<SignIn>) -> Result<Response, ApiError> {
    let entry = web.hq.state().people.get(&req.login).cloned();
    let wrong = || unauthorized("wrong login or password");
    let Some(entry) = entry else { return Err(wrong()) };
    let phc = entry.password_phc.clone();
    let ok = tokio::task::spawn_blocking(move || session_token::verify_password(&req.password, &phc)).await.map_err(super::internal)?;
    if !ok {
        tracing::warn!(login = %entry.person.login, "failed sign-in");
        return Err(wrong());
    }
    if entry.person.disabled {
        return Err(ApiError(StatusCode::FORBIDDEN, protocol::people::Denied::Disabled { login: entry.person.login }.to_string()));
    }
    let now = now_unix();
    let token =
        session_token::mint(&web.session_key, &entry.person.login, now, edge::session::SESSION_TTL_SECS, edge::session::random_bytes());
    let expires_unix = now + edge::session::SESSION_TTL_SECS;
    tracing::info!(login = %entry.person.login, "signed in");
    let cookie = edge::session::session_cookie(&token, edge::session::SESSION_TTL_SECS);
    let roles: Vec<_> = entry.person.roles.iter().map(|r| r.name()).collect();
    Ok((
        [(header::SET_COOKIE, cookie)],
        Json(json!({ "token": token, "expires_unix": expires_unix, "login": entry.person.login, "roles": roles })),
    )
        .into_response())
}

/// The sign-in form the status page shows to a caller without a session.
pub const SIGN_IN_FORM: &str = "<form id=signin><input name=login placeholder=login autocomplete=username> \
<input name=password type=password placeholder=password autocomplete=current-password> <button>Sign in</button></form><p id=msg></p>\
<script>document.getElementById('signin').onsubmit=async e=>{e.preventDefault();const f=new FormData(e.target);\
const r=await fetch('/api/session',{method:'POST',headers:{'content-type':'application/json'},body:JSON.stringify({login:f.get('login'),password:f.get('password')})});\
if(r.ok){location.reload()}else{document.getElementById('msg').textContent=(await r.json()).error}}</script>";
