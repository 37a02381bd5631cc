//! HQ's admin writes over HTTP: branches (add, revoke, a new token), products (one, or a
//! whole import), credit limits, overdraft allowances, scopes and customers/suppliers.
//! Each that changes what a branch is told moves the profile version and pushes it
//! (`Hq::profile_changed`). Must not decide rules itself: codes, scopes and parties parse
//! through `protocol`, writes go through `store`.

use std::collections::BTreeSet;

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::Json;
use protocol::codes::{BranchCode, ProductCode, WarehouseCode};
use protocol::profile::Product;
use protocol::Decimal;
use serde::Deserialize;
use serde_json::json;

use super::{auth, bad, blocking, internal, ApiError, AppState};
use crate::server::now_unix;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBranch {
    pub code: String,
    pub name: String,
    pub warehouses: Vec<String>,
}

pub(super) async fn add_branch(
    State(hq): State<AppState>,
    edge::api::ApiJson(req): edge::api::ApiJson<AddBranch>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = BranchCode::new(req.code).map_err(bad)?;
    let warehouses = req.warehouses.into_iter().map(WarehouseCode::new).collect::<Result<BTreeSet<_>, _>>().map_err(bad)?;
    let hq2 = hq.clone();
    let secret = tokio::task::spawn_blocking(move || {
        let mut st = hq2.state();
        hq2.store.add_branch(&mut st, code, req.name, warehouses, now_unix(), hq2.config.token_ttl_hours * 3600)
    })
    .await
    .map_err(internal)?
    .map_err(bad)?;
    hq.profile_changed();
    Ok(Json(json!({ "branch": code, "token": hq.token_text(&code, secret), "expires_in_hours": hq.config.token_ttl_hours })))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RevokeRequest {
    #[serde(default)]
    reason: Option<String>,
}

/// Revokes a branch's enrolled key: its connections are closed and refused until it
/// enrolls again with a new token. Logged with who did it.
pub(super) async fn revoke_branch(
    State(hq): State<AppState>,
    Extension(by): Extension<auth::Session>,
    edge::api::ApiPath(code): edge::api::ApiPath<String>,
    edge::api::ApiJson(req): edge::api::ApiJson<RevokeRequest>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = BranchCode::new(code).map_err(bad)?;
    let reason = req.reason.unwrap_or_else(|| "revoked by an HQ administrator".into());
    tracing::warn!(by = %by.person.login, branch = %code, %reason, "branch key revocation requested");
    let hq2 = hq.clone();
    let revoked = blocking(move || hq2.revoke_branch(&code, &reason)).await?.map_err(bad)?;
    Ok(Json(json!({ "branch": code, "revoked": revoked })))
}

pub(super) async fn new_token(
    State(hq): State<AppState>,
    Extension(by): Extension<auth::Session>,
    edge::api::ApiPath(code): edge::api::ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = BranchCode::new(code).map_err(bad)?;
    // Revokes the enrolled key and closes its connections; who did it is kept in the log.
    tracing::warn!(by = %by.person.login, branch = %code, "enrollment token issued for an existing branch");
    let hq2 = hq.clone();
    let token = blocking(move || hq2.reissue_token(&code)).await?.map_err(bad)?;
    Ok(Json(json!({ "branch": code, "token": token, "expires_in_hours": hq.config.token_ttl_hours })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddProduct {
    pub code: String,
    pub name: String,
    #[serde(default)]
    pub unit: String,
    #[serde(default, with = "protocol::decimal_serde::option")]
    pub retail_price: Option<Decimal>,
    #[serde(default)]
    pub prices: Vec<protocol::decimal_serde::Dec>,
    /// Product category code (scope's category rule runs over it).
    #[serde(default)]
    pub category: Option<protocol::scope::ScopeCode>,
}

impl AddProduct {
    fn into_product(self) -> Result<(ProductCode, Product), String> {
        let code = ProductCode::new(&self.code).map_err(|e| e.to_string())?;
        if self.prices.len() > protocol::profile::PRICE_LEVELS_MAX {
            return Err(format!("product {code}: at most {} preset prices", protocol::profile::PRICE_LEVELS_MAX));
        }
        let product =
            Product { name: self.name, unit: self.unit, retail_price: self.retail_price, prices: self.prices, category: self.category };
        product.check_text().map_err(|e| format!("product {code}: {e}"))?;
        Ok((code, product))
    }
}

pub(super) async fn add_product(
    State(hq): State<AppState>,
    edge::api::ApiJson(req): edge::api::ApiJson<AddProduct>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (code, product) = req.into_product().map_err(bad)?;
    let hq2 = hq.clone();
    let version = blocking(move || {
        let mut st = hq2.state();
        hq2.store.add_product(&mut st, code, product).map(|()| st.profile_version)
    })
    .await?
    .map_err(internal)?;
    hq.profile_changed();
    Ok(Json(json!({ "product": code, "profile_version": version })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportProducts {
    pub products: Vec<AddProduct>,
}

/// Adds or updates many products as one change (`hq product import` sends a parsed CSV
/// here while HQ is running). All or nothing: one bad product refuses the lot.
pub(super) async fn import_products(
    State(hq): State<AppState>,
    edge::api::ApiJson(req): edge::api::ApiJson<ImportProducts>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let products = req.products.into_iter().map(AddProduct::into_product).collect::<Result<Vec<_>, _>>().map_err(bad)?;
    let count = products.len();
    let hq2 = hq.clone();
    let (added, version) = blocking(move || {
        let mut st = hq2.state();
        hq2.store.add_products(&mut st, products).map(|added| (added, st.profile_version))
    })
    .await?
    .map_err(internal)?;
    hq.profile_changed();
    Ok(Json(json!({ "products": count, "new": added, "profile_version": version })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetCreditLimit {
    pub customer: String,
    #[serde(default, with = "protocol::decimal_serde::option")]
    pub limit: Option<Decimal>,
}

pub(super) async fn set_credit_limit(
    State(hq): State<AppState>,
    edge::api::ApiJson(req): edge::api::ApiJson<SetCreditLimit>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = protocol::codes::PartyCode::new(req.customer).map_err(bad)?;
    let hq2 = hq.clone();
    let limit = req.limit;
    let version = blocking(move || {
        let mut st = hq2.state();
        hq2.store.set_credit_limit(&mut st, code, limit).map(|()| st.profile_version)
    })
    .await?
    .map_err(internal)?;
    hq.profile_changed();
    Ok(Json(json!({ "customer": code, "limit": req.limit.map(|l| l.to_string()), "profile_version": version })))
}

#[derive(Deserialize)]
pub struct SetOverdraft {
    pub branch: String,
    /// A cash (1001…) or bank (1002…) account, e.g. `1002.ICBC`.
    pub account: String,
    /// How far below zero it may go, in yuan; absent or null removes the allowance.
    #[serde(default, with = "protocol::decimal_serde::option")]
    pub allow: Option<Decimal>,
}

/// Sets how far below zero a branch's cash/bank account may go (issue 11); a new
/// profile version, so branch and HQ refuse the same documents.
pub(super) async fn set_overdraft(State(hq): State<AppState>, Json(req): Json<SetOverdraft>) -> Result<Json<serde_json::Value>, ApiError> {
    let branch = protocol::codes::BranchCode::new(req.branch).map_err(bad)?;
    let account = protocol::codes::AccountCode::parse(&req.account).map_err(bad)?;
    if !protocol::books::accounts::is_money(&account) {
        return Err(bad(format!("{account} is not a cash (1001) or bank (1002) account")));
    }
    if let Some(a) = req.allow {
        if a < Decimal::ZERO || a.scale() > 2 || a > protocol::document::AMOUNT_MAX {
            return Err(bad(format!("allow {a}: an amount of yuan and fen, zero or more, at most 10^15")));
        }
    }
    let mut st = hq.state();
    if !st.branches.contains_key(&branch) {
        return Err(bad(format!("no branch {branch}")));
    }
    hq.store.set_overdraft(&mut st, branch, account, req.allow).map_err(internal)?;
    let version = st.profile_version;
    drop(st);
    hq.profile_changed();
    Ok(Json(json!({ "branch": branch, "account": account, "allow": req.allow.map(|a| a.to_string()), "profile_version": version })))
}

// ---- issue 9 "scope" handlers: a branch's scope, customers and suppliers.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetScope {
    /// The scope text, `warehouses=SH01; categories=01; customers=200*; …`.
    pub scope: String,
}

pub(super) async fn set_scope(
    State(hq): State<AppState>,
    edge::api::ApiPath(code): edge::api::ApiPath<String>,
    edge::api::ApiJson(req): edge::api::ApiJson<SetScope>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = protocol::codes::BranchCode::new(code).map_err(bad)?;
    let scope: protocol::scope::Scope = req.scope.parse().map_err(bad)?;
    let hq2 = hq.clone();
    let scope2 = scope.clone();
    let version = blocking(move || {
        let mut st = hq2.state();
        if !st.branches.contains_key(&code) {
            return Err(ApiError(StatusCode::NOT_FOUND, format!("no branch {code}")));
        }
        hq2.store.set_scope(&mut st, code, scope2).map_err(internal)?;
        Ok(st.profile_version)
    })
    .await??;
    hq.profile_changed();
    Ok(Json(json!({ "branch": code, "scope": scope.to_string(), "profile_version": version })))
}

pub(super) async fn show_scope(
    State(hq): State<AppState>,
    edge::api::ApiPath(code): edge::api::ApiPath<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let code = protocol::codes::BranchCode::new(code).map_err(bad)?;
    let st = hq.state();
    let profile = crate::store::profile_of(&st, &code).ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("no branch {code}")))?;
    Ok(Json(json!({ "branch": code, "scope": profile.scope().to_string(), "profile_version": profile.version })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutParty {
    pub party: protocol::parties::Party,
    #[serde(default)]
    pub replace: bool,
}

pub(super) async fn put_customer(
    State(hq): State<AppState>,
    edge::api::ApiJson(req): edge::api::ApiJson<PutParty>,
) -> Result<Json<serde_json::Value>, ApiError> {
    blocking(move || put_party(hq, req, protocol::parties::PartyRole::Customer)).await?
}

pub(super) async fn put_supplier(
    State(hq): State<AppState>,
    edge::api::ApiJson(req): edge::api::ApiJson<PutParty>,
) -> Result<Json<serde_json::Value>, ApiError> {
    blocking(move || put_party(hq, req, protocol::parties::PartyRole::Supplier)).await?
}

pub(super) fn put_party(hq: AppState, req: PutParty, role: protocol::parties::PartyRole) -> Result<Json<serde_json::Value>, ApiError> {
    if req.party.role != role {
        return Err(bad(format!("this route takes {}s", role.name())));
    }
    let code = req.party.code;
    let mut st = hq.state();
    hq.store.put_party(&mut st, req.party, req.replace).map_err(|e| match e {
        crate::store::StoreError::Party(p) => bad(p),
        e => internal(e),
    })?;
    let version = st.profile_version;
    drop(st);
    hq.profile_changed();
    Ok(Json(json!({ role.name(): code, "profile_version": version })))
}
