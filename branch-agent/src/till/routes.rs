//! HTTP for the till: JSON under `/api/pos`, the till page at `/pos` and the customer
//! display at `/pos/display` (both from `branch-agent/templates/`). Thin: each handler
//! parses its request and calls one `Pos` method; no till rule lives here. The routes
//! and the rights they need are declared in `crate::routes`; a cashier signs in first.
//!
//! Must not: hold a till rule or decide who may call a route.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Html;
use axum::Json;
use devices::DisplayState;
use edge::api::{ApiBytes, ApiPath};
use protocol::codes::OperatorId;
use protocol::date::BusinessDate;
use protocol::Decimal;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use super::error::TillError;
use super::payment::parse_method;
use super::service::Pos;

/// The second screen facing the customer: the same two lines as the pole display, large.
const DISPLAY_PAGE: &str = include_str!("../../templates/display.html");

/// A minimal till: a keyboard-wedge scanner types into the code box and presses Enter.
const TILL_PAGE: &str = include_str!("../../templates/till.html");

type PosState = Arc<Pos>;

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, TillError> {
    // The till answers 400 for any request it cannot read (README), in the API's words.
    edge::api::decode(body).map_err(|r| TillError::BadRequest(r.error))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScanRequest {
    code: String,
    #[serde(default, with = "protocol::decimal_serde::option")]
    qty: Option<Decimal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WeighRequest {
    product: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PayRequest {
    method: String,
    #[serde(default, with = "protocol::decimal_serde::option")]
    tendered: Option<Decimal>,
    #[serde(default)]
    date: Option<BusinessDate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct OpenShiftRequest {
    cashier: OperatorId,
    #[serde(default, with = "protocol::decimal_serde::option")]
    float: Option<Decimal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloseShiftRequest {
    #[serde(with = "protocol::decimal_serde")]
    counted_cash: Decimal,
}

pub(crate) async fn display(State(pos): State<PosState>) -> Json<DisplayState> {
    Json(pos.display())
}

pub(crate) async fn status(State(pos): State<PosState>) -> Json<Value> {
    Json(pos.status().await)
}

pub(crate) async fn cart(State(pos): State<PosState>) -> Json<Value> {
    Json(pos.cart().await)
}

pub(crate) async fn clear_cart(State(pos): State<PosState>) -> Result<Json<Value>, TillError> {
    pos.clear().await.map(Json)
}

pub(crate) async fn void_line(State(pos): State<PosState>, ApiPath(n): ApiPath<usize>) -> Result<Json<Value>, TillError> {
    pos.void(n).await.map(Json)
}

pub(crate) async fn scan(State(pos): State<PosState>, ApiBytes(body): ApiBytes) -> Result<Json<Value>, TillError> {
    let req: ScanRequest = parse(&body)?;
    pos.scan(&req.code, req.qty).await.map(Json)
}

pub(crate) async fn weigh(State(pos): State<PosState>, ApiBytes(body): ApiBytes) -> Result<Json<Value>, TillError> {
    let req: WeighRequest = parse(&body)?;
    pos.weigh(&req.product).await.map(Json)
}

pub(crate) async fn pay(State(pos): State<PosState>, ApiBytes(body): ApiBytes) -> Result<(StatusCode, Json<Value>), TillError> {
    let req: PayRequest = parse(&body)?;
    let method = parse_method(&req.method)
        .ok_or_else(|| TillError::BadRequest(format!("payment method {:?} is not one of Cash, Card, Mobile", req.method)))?;
    pos.pay(method, req.tendered, req.date).await.map(|v| (StatusCode::CREATED, Json(v)))
}

pub(crate) async fn reprint(State(pos): State<PosState>, ApiPath(seq): ApiPath<u64>) -> Result<Json<Value>, TillError> {
    pos.reprint(seq).await.map(Json)
}

pub(crate) async fn current_shift(State(pos): State<PosState>) -> Result<Json<Value>, TillError> {
    pos.current_shift().await.map(Json)
}

pub(crate) async fn open_shift(State(pos): State<PosState>, ApiBytes(body): ApiBytes) -> Result<(StatusCode, Json<Value>), TillError> {
    let req: OpenShiftRequest = parse(&body)?;
    pos.open_shift(req.cashier, req.float.unwrap_or(Decimal::ZERO)).await.map(|v| (StatusCode::CREATED, Json(v)))
}

pub(crate) async fn close_shift(State(pos): State<PosState>, ApiBytes(body): ApiBytes) -> Result<Json<Value>, TillError> {
    let req: CloseShiftRequest = parse(&body)?;
    pos.close_shift(req.counted_cash).await.map(Json)
}

pub(crate) async fn shift_by_id(State(pos): State<PosState>, ApiPath(id): ApiPath<u64>) -> Result<Json<Value>, TillError> {
    pos.shift_report(id).await.map(Json)
}

pub(crate) async fn display_page() -> Html<&'static str> {
    Html(DISPLAY_PAGE)
}

pub(crate) async fn till_page() -> Html<&'static str> {
    Html(TILL_PAGE)
}
