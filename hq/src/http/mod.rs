//! HQ's HTTP API: consolidated stock, branch sync status, accepted documents with their
//! signature status, rejections, and the admin calls behind `hq branch add` while HQ
//! runs. JSON under `/api`, CSV with `?format=csv`, and a plain HTML page at `/`.
//!
//! Submodules: `routes` (the one route table the router is built from), `auth` (sign-in
//! and the guard every route passes), `people` (people over HTTP), `reads` (what the API
//! shows), `admin` (admin writes), `page` (the status page), `ops` (`/healthz`, `/readyz`,
//! `/metrics`). This module holds the
//! router and the error shape; it must not hold handlers. Nobody anonymous gets past `/`
//! (a sign-in hint), `POST /api/session` and the data-free `/healthz` and `/readyz`.

mod admin;
pub mod auth;
mod ops;
mod page;
pub mod people;
mod reads;
pub mod routes;

pub use admin::{AddBranch, AddProduct, ImportProducts, PutParty, SetCreditLimit, SetOverdraft, SetScope};
pub use reads::{BranchStatus, ReportQuery, StockRow};
// The handlers, for the route table (`routes::table` names them through `super::*`).
use admin::*;
use ops::*;
use page::*;
use reads::*;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde_json::json;

use crate::server::Hq;

type AppState = Arc<Hq>;

/// The HTTP API, built from `routes::table`; `session_key` signs this process's sessions.
pub fn router(hq: Arc<Hq>, session_key: [u8; 32]) -> Router {
    routes::build(auth::Web { hq, session_key: Arc::new(session_key) })
}

/// An error a person can act on, as JSON with a status code: 4xx for what the request
/// got wrong, 5xx for what HQ could not do (its store, a worker thread).
#[derive(Debug, thiserror::Error)]
#[error("{1}")]
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn bad(e: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, e.to_string())
}
/// Runs `f` on a blocking thread: whatever takes the state lock to write (a sled write
/// and its fsync) or does heavy work stays off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(internal)
}

/// A failure of HQ itself (its store, a worker thread), with the chain of causes.
fn internal(e: impl std::error::Error) -> ApiError {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, text)
}
