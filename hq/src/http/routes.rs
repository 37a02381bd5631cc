//! HQ's one route table: every HTTP route as (method, path, who may call it, handler).
//! The router is built from it and nothing else, each route behind `auth::guard`, so a
//! route cannot exist without a declared check; `hq routes` prints it and the
//! integration test `http_doors` calls every row anonymously and with a wrong role.
//!
//! To add a route, add one line to `table()`:
//! `POST "/api/review/{code}/{seq}" => review::resolve, needs(Function::Review, Right::Manage, Target::PathBranch);`
//! Must not hold handlers or decide rights.

use protocol::people::{Function, Right};

use super::auth::{self, Access, Target, Web};

/// One row of the table (`edge::routes::Route` with HQ's `Access`).
pub type Route = edge::routes::Route<Web, Access>;

const fn needs(function: Function, right: Right, target: Target) -> Access {
    Access::needs(function, right, target)
}

/// Every route of HQ's HTTP API.
pub fn table() -> Vec<Route> {
    use super::*;
    use Function as F;
    use Right as R;
    use Target as T;
    edge::route_table! {
        GET "/" => index, Access::Public;
        POST "/api/session" => auth::sign_in, Access::Public;
        // Public on purpose: a load balancer or systemd probe has no session, and the
        // answers carry no data (status words and the names of the checks only).
        GET "/healthz" => healthz, Access::Public;
        GET "/readyz" => readyz, Access::Public;
        // Counts and lags per branch are business data: people who may read reports, or
        // a scraper with hq.toml's `metrics_token`.
        GET "/metrics" => metrics, Access::Scrape;
        GET "/api/stock" => stock, needs(F::Reports, R::View, T::Hq);
        GET "/api/branches" => branches, needs(F::Branches, R::View, T::Hq);
        GET "/api/branches/{code}/documents/{seq}" => document, needs(F::Reports, R::View, T::PathBranch);
        GET "/api/branches/{code}/rejections" => rejections, needs(F::Branches, R::View, T::PathBranch);
        GET "/api/branches/{code}/movements" => movements, needs(F::Reports, R::View, T::PathBranch);
        GET "/api/reports/{name}" => report, needs(F::Reports, R::View, T::QueryBranch);
        GET "/api/export/ledger" => export_ledger, needs(F::Reports, R::View, T::QueryBranch);
        POST "/api/admin/branches" => add_branch, needs(F::Branches, R::Add, T::Hq);
        POST "/api/admin/branches/{code}/token" => new_token, needs(F::Branches, R::Manage, T::Hq);
        POST "/api/admin/branches/{code}/revoke" => revoke_branch, needs(F::Branches, R::Manage, T::Hq);
        GET "/api/products" => products, needs(F::MasterData, R::View, T::Hq);
        POST "/api/admin/products" => add_product, needs(F::MasterData, R::Add, T::Hq);
        POST "/api/admin/products/import" => import_products, needs(F::MasterData, R::Add, T::Hq);
        POST "/api/admin/credit-limits" => set_credit_limit, needs(F::MasterData, R::Manage, T::Hq);
        POST "/api/admin/overdrafts" => set_overdraft, needs(F::MasterData, R::Manage, T::Hq);
        GET "/api/review" => crate::review::list, needs(F::Review, R::View, T::Hq);
        POST "/api/review/{code}/{seq}/accept" => crate::review::accept, needs(F::Review, R::Manage, T::PathBranch);
        POST "/api/review/{code}/{seq}/reverse" => crate::review::reverse, needs(F::Review, R::Manage, T::PathBranch);
        POST "/api/periods/{code}/reopen" => crate::periods::reopen, needs(F::Review, R::Manage, T::PathBranch);
        POST "/api/transfers" => crate::transfers::order, needs(F::Transfers, R::Add, T::Hq);
        GET "/api/transfers" => crate::transfers::list, needs(F::Transfers, R::View, T::Hq);
        GET "/api/transfers/in-transit" => crate::transfers::in_transit, needs(F::Transfers, R::View, T::Hq);
        GET "/api/transfers/requests" => crate::transfers::requests, needs(F::Transfers, R::View, T::Hq);
        POST "/api/transfers/requests/{code}/{seq}/confirm" => crate::transfers::confirm, needs(F::Transfers, R::Add, T::Hq);
        POST "/api/transfers/{order}/settle" => crate::transfers::settle, needs(F::Transfers, R::Approve, T::Hq);
        GET "/api/approvals" => crate::approvals::list, needs(F::Approvals, R::View, T::Hq);
        POST "/api/approvals/{code}/{id}/approve" => crate::approvals::approve, needs(F::Approvals, R::Approve, T::PathBranch);
        POST "/api/approvals/{code}/{id}/refuse" => crate::approvals::refuse, needs(F::Approvals, R::Approve, T::PathBranch);
        GET "/api/admin/approval-rules" => crate::approvals::rules, needs(F::Scope, R::View, T::Hq);
        POST "/api/admin/approval-rules" => crate::approvals::set_rules, needs(F::Scope, R::Manage, T::Hq);
        POST "/api/admin/branches/{code}/down/test-flags" => crate::review::test_flags, needs(F::Branches, R::Manage, T::Hq);
        GET "/api/admin/scopes/{code}" => show_scope, needs(F::Scope, R::View, T::Hq);
        POST "/api/admin/scopes/{code}" => set_scope, needs(F::Scope, R::Manage, T::Hq);
        POST "/api/admin/customers" => put_customer, needs(F::MasterData, R::Add, T::Hq);
        POST "/api/admin/suppliers" => put_supplier, needs(F::MasterData, R::Add, T::Hq);
        GET "/api/people" => people::list, needs(F::People, R::View, T::Hq);
        POST "/api/admin/people" => people::add, needs(F::People, R::Add, T::Hq);
        POST "/api/admin/people/{login}/disable" => people::disable, needs(F::People, R::Manage, T::Hq);
    }
}

/// The table as text, one route a line: `METHOD path access` (what `hq routes` prints).
pub fn describe() -> String {
    table().iter().map(|r| format!("{} {} {}\n", r.method, r.path, describe_access(r.access))).collect()
}

fn describe_access(access: Access) -> String {
    match access {
        Access::Public => "public".into(),
        Access::Needs { function, right, target } => format!("{:?}:{:?}:{:?}", function, right, target),
        Access::Scrape => "Reports:View:Hq|metrics_token".into(),
    }
}

/// The router, built from the table: each route behind its own guard, the whole behind
/// `edge::api`'s JSON refusals and body limit.
pub fn build(web: Web) -> axum::Router {
    let guarded = web.clone();
    let router = edge::routes::router(table(), move |handler, access| {
        handler.route_layer(axum::middleware::from_fn_with_state((guarded.clone(), access), auth::guard))
    });
    // Every answer of a route counted by its pattern and status, the guard's refusals too.
    let router = router.layer(axum::middleware::from_fn_with_state(web.hq.metrics.http.clone(), edge::metrics::count_http));
    // Outermost: every refusal, axum's own included, answers JSON saying what to fix.
    edge::api::harden(router).with_state(web)
}
