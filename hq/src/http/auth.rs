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
use axum::RequestExt;
use protocol::codes::BranchCode;
use protocol::people::{authorize, Function, Person, Right};
use protocol::session_token;
use serde::Deserialize;

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
    /// No token needed: only the status page (which then shows a sign-in hint),
    /// sign-in itself, and the probes `/healthz` and `/readyz` (no data).
    Public,
    Needs {
        function: Function,
        right: Right,
        target: Target,
    },
    /// `/metrics`: hq.toml's `metrics_token` as a bearer token, or else a person with
    /// Reports:View at HQ.
    Scrape,
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
    let (function, right, target) = match access {
        Access::Public => return next.run(req).await,
        Access::Scrape => {
            if web.hq.config.metrics_token.as_deref().is_some_and(|t| edge::metrics::bearer_is(req.headers(), t)) {
                return next.run(req).await;
            }
            (Function::Reports, Right::View, Target::Hq)
        }
        Access::Needs { function, right, target } => (function, right, target),
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

/// `POST /api/session`: a bearer token and the same token as a page cookie, for a person
/// HQ knows.
pub async fn sign_in(State(web): State<Web>, edge::api::ApiJson(req): edge::api::ApiJson<SignIn>) -> Response {
    let entry = web.hq.state().people.get(&req.login).cloned();
    edge::sign_in::answer(&web.session_key, entry, req).await
}

pub use edge::sign_in::{SignIn, SIGN_IN_FORM};
