//! HQ's approval queue over HTTP: the drafts branches sent up for approval with their
//! reasons and state, an auditor's approve / refuse (recorded durably with the down
//! message that carries it to the branch), and the approval rules HQ issues with every
//! profile version.
//!
//! Plain handler functions; the route table mounts them. Who may call them (the approve
//! right on approvals; the scope-manage right for the rules) is the router's check, not
//! this module's. Must not write the store except through `Store::decide_approval` and
//! `Store::set_approval_rules`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use protocol::approval::ApprovalRules;
use protocol::codes::BranchCode;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::auth::Session;
use crate::server::{now_unix, Hq};
use crate::store::StoreError;

type Reply = Result<Json<Value>, (StatusCode, Json<Value>)>;

fn fail(status: StatusCode, text: impl std::fmt::Display) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "error": text.to_string() })))
}

fn store_fail(e: StoreError) -> (StatusCode, Json<Value>) {
    let status = match &e {
        StoreError::NoDraft { .. } | StoreError::NoBranch(_) => StatusCode::NOT_FOUND,
        StoreError::DraftDecided { .. } => StatusCode::CONFLICT,
        StoreError::Down(_) | StoreError::Code(_) | StoreError::BadRules(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    fail(status, e)
}

/// `GET /api/approvals`: every draft HQ received, oldest first per branch: `waiting`,
/// `approved`, `refused` or `posted` (an approved draft whose document arrived).
pub async fn list(State(hq): State<Arc<Hq>>) -> Reply {
    let st = hq.state();
    let items: Vec<Value> = st
        .approvals
        .items
        .iter()
        .map(|((branch, id), item)| {
            let state = match (&item.decision, item.posted_seq) {
                (_, Some(_)) => "posted",
                (None, None) => "waiting",
                (Some(d), None) if d.approved => "approved",
                (Some(_), None) => "refused",
            };
            json!({
                "branch": branch,
                "id": id,
                "state": state,
                "doc_type": item.draft.draft.doc_type.code(),
                "needs": item.draft.needs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "profile_version": item.draft.profile_version,
                "received_unix": item.received_unix,
                "draft": item.draft.draft,
                "decision": item.decision,
                "posted_seq": item.posted_seq,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items, "rules": st.approvals.rules })))
}

#[derive(Deserialize)]
pub struct DecideRequest {
    #[serde(default)]
    pub note: String,
}

/// `POST /api/approvals/{code}/{id}/approve`.
pub async fn approve(state: State<Arc<Hq>>, by: Extension<Session>, path: Path<(String, u64)>, body: Json<DecideRequest>) -> Reply {
    decide(state, by, path, body, true).await
}

/// `POST /api/approvals/{code}/{id}/refuse`.
pub async fn refuse(state: State<Arc<Hq>>, by: Extension<Session>, path: Path<(String, u64)>, body: Json<DecideRequest>) -> Reply {
    decide(state, by, path, body, false).await
}

async fn decide(
    State(hq): State<Arc<Hq>>,
    Extension(by): Extension<Session>,
    Path((code, id)): Path<(String, u64)>,
    Json(req): Json<DecideRequest>,
    approved: bool,
) -> Reply {
    let branch = BranchCode::new(code).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    if req.note.len() > protocol::down::DOWN_TEXT_BYTES_MAX {
        let text = format!("note is {} bytes, at most {}", req.note.len(), protocol::down::DOWN_TEXT_BYTES_MAX);
        return Err(fail(StatusCode::UNPROCESSABLE_ENTITY, text));
    }
    let hq2 = hq.clone();
    let decision = tokio::task::spawn_blocking(move || {
        let mut st = hq2.state();
        // The decider is the signed-in person, never a name in the body.
        hq2.store.decide_approval(&mut st, &branch, id, approved, by.person.login.as_str(), &req.note, now_unix())
    })
    .await
    .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))?
    .map_err(store_fail)?;
    hq.down_changed();
    Ok(Json(json!({ "branch": branch, "id": id, "decision": decision })))
}

/// `GET /api/admin/approval-rules`.
pub async fn rules(State(hq): State<Arc<Hq>>) -> Reply {
    let st = hq.state();
    Ok(Json(json!({ "rules": st.approvals.rules, "profile_version": st.profile_version })))
}

/// `POST /api/admin/approval-rules` `{"gifts","stock_loss_above","below_cost","over_credit_limit"}`:
/// a new profile version for every branch; documents posted under older versions are
/// still judged by the rules of the version they name.
pub async fn set_rules(State(hq): State<Arc<Hq>>, Json(rules): Json<ApprovalRules>) -> Reply {
    let hq2 = hq.clone();
    let version = tokio::task::spawn_blocking(move || {
        let mut st = hq2.state();
        hq2.store.set_approval_rules(&mut st, rules).map(|()| st.profile_version)
    })
    .await
    .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))?
    .map_err(store_fail)?;
    hq.profile_changed();
    Ok(Json(json!({ "profile_version": version })))
}
