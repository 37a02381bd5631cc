//! The sign-in exchange both HTTP APIs answer at `POST /api/session`: the request, the
//! password check (on a blocking thread: argon2id is slow on purpose), the bearer token
//! and the same token as a page cookie, and the sign-in form pages show.
//!
//! Must not decide who a person is or may do: the caller looks the person up in its own
//! records (HQ's people, the branch's profile); hashes and tokens are
//! `protocol::session_token`'s, the disabled refusal `protocol::people::Denied`'s.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use protocol::codes::OperatorId;
use protocol::people::Denied;
use protocol::profile::PersonEntry;
use protocol::session_token;
use serde::Deserialize;
use serde_json::json;

use crate::api::Refusal;
use crate::session::{random_bytes, session_cookie, SESSION_TTL_SECS};

/// `POST /api/session`'s body.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub login: OperatorId,
    pub password: String,
}

/// Answers a sign-in: `entry` is the person with the login asked for, if the caller knows
/// one. A wrong login and a wrong password get the same answer.
pub async fn answer(session_key: &[u8; 32], entry: Option<PersonEntry>, req: SignIn) -> Response {
    let wrong = || Refusal::new(StatusCode::UNAUTHORIZED, "wrong login or password").into_response();
    let Some(entry) = entry else { return wrong() };
    let phc = entry.password_phc.clone();
    let Ok(ok) = tokio::task::spawn_blocking(move || session_token::verify_password(&req.password, &phc)).await else {
        return Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, "the password check failed").into_response();
    };
    if !ok {
        tracing::warn!(login = %entry.person.login, "failed sign-in");
        return wrong();
    }
    if entry.person.disabled {
        return Refusal::new(StatusCode::FORBIDDEN, Denied::Disabled { login: entry.person.login }.to_string()).into_response();
    }
    let now = crate::now_unix();
    let token = session_token::mint(session_key, &entry.person.login, now, SESSION_TTL_SECS, random_bytes());
    tracing::info!(login = %entry.person.login, "signed in");
    let roles: Vec<_> = entry.person.roles.iter().map(|r| r.name()).collect();
    (
        [(header::SET_COOKIE, session_cookie(&token, SESSION_TTL_SECS))],
        Json(json!({ "token": token, "expires_unix": now + SESSION_TTL_SECS, "login": entry.person.login, "roles": roles })),
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
