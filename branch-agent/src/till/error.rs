//! `TillError`: why a till step was refused, and the HTTP status each kind maps to. Holds
//! no till state; its texts are written for the cashier.
//!
//! Must not: hold till state or decide a refusal; it names one.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// Why a till step was refused; each maps to one HTTP status and its text is for the cashier.
#[derive(Debug, thiserror::Error)]
pub enum TillError {
    /// Malformed request (400).
    #[error("{0}")]
    BadRequest(String),
    /// The input cannot be sold as is: misread, unknown product, no price, underpaid, or
    /// refused by the books (422). Nothing changed.
    #[error("{0}")]
    Refused(String),
    /// The till is not in a state for this step: no shift, empty cart (409).
    #[error("{0}")]
    State(String),
    /// A device this step needs failed (the scale, a reprint) (503). The sale goes on.
    #[error("{0}")]
    Device(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for TillError {
    fn into_response(self) -> Response {
        let status = match &self {
            TillError::BadRequest(_) => StatusCode::BAD_REQUEST,
            TillError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            TillError::State(_) => StatusCode::CONFLICT,
            TillError::Device(_) => StatusCode::SERVICE_UNAVAILABLE,
            TillError::NotFound(_) => StatusCode::NOT_FOUND,
            TillError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

pub fn internal(e: impl std::fmt::Display) -> TillError {
    TillError::Internal(e.to_string())
}
