//! HQ's review queue over HTTP: flagged and quarantined documents with their reasons and
//! decision state, an auditor's accept / reverse (recorded durably with the order it puts
//! on the branch's down queue), and a test-only path that queues flag notices.
//!
//! Plain handler functions; `http::router` mounts them. Who may call them (an HQ auditor
//! with the approve right) is the router's check, not this module's. Must not write the
//! store except through `Store::decide` / `Store::enqueue_down`.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Extension;
use axum::Json;
use protocol::codes::BranchCode;
use protocol::down::{DownBody, ResolutionOrder};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::auth::Session;
use crate::server::{now_unix, Hq};
use crate::store::{ReviewKind, StoreError};

type Reply = Result<Json<Value>, (StatusCode, Json<Value>)>;

fn fail(status: StatusCode, text: impl std::fmt::Display) -> (StatusCode, Json<Value>) {
    (status, Json(json!({ "error": text.to_string() })))
}

fn store_fail(e: StoreError) -> (StatusCode, Json<Value>) {
    let status = match &e {
        StoreError::NotForReview { .. } | StoreError::NoBranch(_) => StatusCode::NOT_FOUND,
        StoreError::AlreadyDecided { .. } => StatusCode::CONFLICT,
        // A full queue is the branch being away too long: HQ says so, it does not panic.
        StoreError::Down(_) | StoreError::Code(_) => StatusCode::UNPROCESSABLE_ENTITY,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    fail(status, e)
}

/// `GET /api/review`: every flagged or quarantined document, its reason and its state:
/// `open`, `accepted`, `pending` (reversal ordered, not yet arrived) or `done` (an entry
/// whose ext names it in `reverses` arrived).
pub async fn list(State(hq): State<Arc<Hq>>) -> Reply {
    let hq2 = hq.clone();
    let items = tokio::task::spawn_blocking(move || {
        let st = hq2.state();
        let mut out = Vec::new();
        for ((branch, seq), item) in &st.down.review {
            let state = match &item.decision {
                None => "open",
                Some(d) if d.order == ResolutionOrder::Accept => "accepted",
                Some(_) => {
                    // A scan of the branch's journal per reversal ordered: review lists are
                    // short, and the journal is the truth of whether it arrived.
                    let number = item.doc_number.clone();
                    let found =
                        hq2.store.find_documents(branch, |e| e.doc.header.ext.reverses.as_ref() == Some(&number), 1).map_err(store_fail)?;
                    if found.is_empty() {
                        "pending"
                    } else {
                        "done"
                    }
                }
            };
            out.push(json!({
                "branch": branch,
                "seq": seq,
                "number": item.doc_number.to_string(),
                "kind": match item.kind { ReviewKind::Quarantined => "quarantined", ReviewKind::Flagged => "flagged" },
                "reason": item.reason,
                "decision": item.decision,
                "state": state,
            }));
        }
        Ok::<_, (StatusCode, Json<Value>)>(out)
    })
    .await
    .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))??;
    Ok(Json(json!({ "items": items })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecideRequest {
    #[serde(default)]
    pub why: String,
}

/// `POST /api/review/{branch}/{seq}/accept`.
pub async fn accept(
    state: State<Arc<Hq>>,
    by: Extension<Session>,
    path: edge::api::ApiPath<(String, u64)>,
    body: edge::api::ApiJson<DecideRequest>,
) -> Reply {
    decide(state, by, path, body, ResolutionOrder::Accept).await
}

/// `POST /api/review/{branch}/{seq}/reverse`.
pub async fn reverse(
    state: State<Arc<Hq>>,
    by: Extension<Session>,
    path: edge::api::ApiPath<(String, u64)>,
    body: edge::api::ApiJson<DecideRequest>,
) -> Reply {
    decide(state, by, path, body, ResolutionOrder::Reverse).await
}

async fn decide(
    State(hq): State<Arc<Hq>>,
    Extension(by): Extension<Session>,
    edge::api::ApiPath((code, seq)): edge::api::ApiPath<(String, u64)>,
    edge::api::ApiJson(req): edge::api::ApiJson<DecideRequest>,
    order: ResolutionOrder,
) -> Reply {
    let branch = BranchCode::new(code).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let hq2 = hq.clone();
    let decision = tokio::task::spawn_blocking(move || {
        let mut st = hq2.state();
        // The decider is the signed-in auditor, never a name in the body.
        hq2.store.decide(&mut st, &branch, seq, order, by.person.login.as_str(), &req.why, now_unix())
    })
    .await
    .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))?
    .map_err(store_fail)?;
    hq.down_changed();
    Ok(Json(json!({ "branch": branch, "seq": seq, "decision": decision })))
}

#[derive(Deserialize)]
pub struct FlagNotices {
    #[serde(default)]
    pub count: u64,
    /// Flag this applied document for review instead.
    pub seq: Option<u64>,
}

/// `POST /api/admin/branches/{code}/down/test-flags?count=N`: queues N flag notices (a
/// test and drill path for the down channel; each names branch seq 0, no document);
/// `?seq=S` instead flags document S for review, as posting under a replaced version will.
pub async fn test_flags(
    State(hq): State<Arc<Hq>>,
    edge::api::ApiPath(code): edge::api::ApiPath<String>,
    Query(q): Query<FlagNotices>,
) -> Reply {
    let branch = BranchCode::new(code).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let number = protocol::document::DocNumber::parse(&format!("PZ-{branch}-0101-001")).map_err(|e| fail(StatusCode::BAD_REQUEST, e))?;
    let hq2 = hq.clone();
    let last = tokio::task::spawn_blocking(move || {
        let mut st = hq2.state();
        if let Some(seq) = q.seq {
            hq2.store.flag_for_review(&mut st, &branch, seq, "flagged by an HQ test path", now_unix())?;
            return Ok(st.down.queues.get(&branch).map_or(0, protocol::down::DownQueue::last_seq));
        }
        let bodies = (0..q.count)
            .map(|i| DownBody::Flag { branch_seq: 0, doc_number: number.clone(), reason: format!("test flag {}", i + 1) })
            .collect();
        hq2.store.enqueue_down(&mut st, &branch, bodies, now_unix())
    })
    .await
    .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, e))?
    .map_err(store_fail)?;
    hq.down_changed();
    Ok(Json(json!({ "last_seq": last })))
}
