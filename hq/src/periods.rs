//! 反结账 at HQ: an auditor orders a branch's latest closed month reopened. The order is
//! checked against HQ's copy of the branch's books (only the latest closed month can be
//! reopened) and goes down the signed down channel (`DownBody::Reopen`); the branch posts
//! the reopen document itself, and it comes back up the journal like any document, so
//! both sides reopen the month by posting the same entry.
//!
//! Plain handler functions; the route table says who may call them (review, manage, the
//! branch in the path). Must not write the store except through `Store::order_reopen`,
//! nor touch any books.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use protocol::codes::{BranchCode, OperatorId};
use protocol::document::Period;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::auth::Session;
use crate::server::{now_unix, Hq};

type Reply = Result<Json<Value>, (StatusCode, Json<Value>)>;

fn fail(status: StatusCode, text: impl std::fmt::Display) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "error": text.to_string() })))
}

/// Most characters of the reason an auditor gives (it travels in the down message).
pub const REOPEN_WHY_CHARS_MAX: usize = 200;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReopenRequest {
    /// The month, `YYYY-MM`: the branch's latest closed month.
    pub period: String,
    /// Why (kept with the order and printed at the branch).
    pub why: String,
}

/// `POST /api/periods/{code}/reopen` `{"period": "2026-06", "why": "..."}`: queues the
/// reopen order for the branch. 409 when the month is not the branch's latest closed
/// month in HQ's copy of its books.
pub async fn reopen(
    State(hq): State<Arc<Hq>>,
    Extension(by): Extension<Session>,
    Path(code): Path<String>,
    Json(req): Json<ReopenRequest>,
) -> Reply {
    let branch = BranchCode::new(code).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let period =
        Period::parse(&req.period).map_err(|e| fail(StatusCode::BAD_REQUEST, format!("period: {e} (give the month as YYYY-MM)")))?;
    let why = req.why.trim().to_string();
    if why.is_empty() || why.chars().count() > REOPEN_WHY_CHARS_MAX {
        return Err(fail(StatusCode::BAD_REQUEST, format!("why: say in 1 to {REOPEN_WHY_CHARS_MAX} characters why the month is reopened")));
    }
    // The orderer is the signed-in auditor, never a name in the body.
    let by = OperatorId::new(by.person.login.as_str()).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let hq2 = hq.clone();
    let down_seq = tokio::task::spawn_blocking(move || {
        let mut st = hq2.state();
        let Some(books) = st.books.get(&branch).and_then(|slot| slot.snapshot()) else {
            return Err(fail(StatusCode::NOT_FOUND, format!("no books for branch {branch}")));
        };
        match books.closed_through() {
            Some(c) if c == period => {}
            Some(c) => {
                return Err(fail(
                    StatusCode::CONFLICT,
                    format!("branch {branch} is closed through {}: only that month can be reopened, not {}", c.label(), period.label()),
                ))
            }
            None => return Err(fail(StatusCode::CONFLICT, format!("branch {branch} has no closed month; {} is open", period.label()))),
        }
        hq2.store.order_reopen(&mut st, &branch, period, by, why, now_unix()).map_err(|e| fail(StatusCode::UNPROCESSABLE_ENTITY, e))
    })
    .await
    .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))??;
    hq.down_changed();
    Ok(Json(json!({ "branch": branch, "period": period.label(), "down_seq": down_seq, "state": "ordered" })))
}
