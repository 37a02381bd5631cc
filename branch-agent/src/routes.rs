//! The branch's one route table: every HTTP route of the local API and the till as
//! (method, path, who may call it, handler). The router is built from it and nothing
//! else, each route behind `auth::guard` and the whole under `auth::same_site`, so a
//! route cannot exist without a declared check; `branch-agent routes` prints it and the
//! integration test `http_doors` calls every row anonymously and with a wrong role.
//! Must not hold handlers or decide rights.

use protocol::people::{Function as F, Right as R};

use crate::auth::{self, Access, AgentWeb};
use crate::http;
use crate::ops;
use crate::till::routes as till;
use crate::transfers;

/// One row of the table (`edge::routes::Route` with the branch's `Access`).
pub type Route = edge::routes::Route<AgentWeb, Access>;

/// Every route of the branch's HTTP API.
pub fn table() -> Vec<Route> {
    use Access::{Docs, Needs, Public, Scrape};
    edge::route_table! {
        GET "/" => http::index, Public;
        POST "/api/session" => auth::sign_in, Public;
        // Public on purpose: a probe has no session, and the answers carry no data
        // (status words and the names of the checks only).
        GET "/healthz" => ops::healthz, Public;
        GET "/readyz" => ops::readyz, Public;
        // Counts of the branch's documents and its sync state: people who may read
        // reports, or a scraper with agent.toml's `metrics_token`.
        GET "/metrics" => ops::metrics, Scrape;
        POST "/api/documents" => http::post_document, Docs(R::Add);
        GET "/api/documents/{seq}" => http::get_document, Needs(F::Reports, R::View);
        GET "/api/stock" => http::stock, Needs(F::Reports, R::View);
        GET "/api/reports/{name}" => http::report, Needs(F::Reports, R::View);
        GET "/api/movements" => http::movements, Needs(F::Reports, R::View);
        POST "/api/documents/{seq}/reverse" => http::reverse_document, Docs(R::Manage);
        POST "/api/stock-count" => http::stock_count, Needs(F::WarehouseDocs, R::Add);
        GET "/api/sync" => http::sync_status, Needs(F::Reports, R::View);
        GET "/api/profile" => http::profile, Needs(F::Scope, R::View);
        GET "/api/notices" => http::notices, Needs(F::Reports, R::View);
        POST "/api/drafts" => http::create_draft, Needs(F::Approvals, R::Add);
        GET "/api/drafts" => http::list_drafts, Needs(F::Approvals, R::View);
        POST "/api/drafts/{id}/post" => http::post_approved_draft, Needs(F::Approvals, R::Add);
        GET "/api/transfers" => transfers::list, Needs(F::WarehouseDocs, R::View);
        POST "/api/transfers/{order}/ship" => transfers::ship, Needs(F::WarehouseDocs, R::Add);
        POST "/api/transfers/{order}/receive" => transfers::receive, Needs(F::WarehouseDocs, R::Add);
        GET "/pos" => till::till_page, Needs(F::Till, R::View);
        GET "/pos/display" => till::display_page, Needs(F::Till, R::View);
        GET "/api/pos/display" => till::display, Needs(F::Till, R::View);
        GET "/api/pos/status" => till::status, Needs(F::Till, R::View);
        GET "/api/pos/cart" => till::cart, Needs(F::Till, R::View);
        DELETE "/api/pos/cart" => till::clear_cart, Needs(F::Till, R::Add);
        DELETE "/api/pos/cart/lines/{n}" => till::void_line, Needs(F::Till, R::Add);
        POST "/api/pos/scan" => till::scan, Needs(F::Till, R::Add);
        POST "/api/pos/weigh" => till::weigh, Needs(F::Till, R::Add);
        POST "/api/pos/pay" => till::pay, Needs(F::RetailDocs, R::Add);
        POST "/api/pos/reprint/{seq}" => till::reprint, Needs(F::Till, R::Add);
        GET "/api/pos/shift" => till::current_shift, Needs(F::Till, R::View);
        POST "/api/pos/shift/open" => till::open_shift, Needs(F::Till, R::Add);
        POST "/api/pos/shift/close" => till::close_shift, Needs(F::Till, R::Add);
        GET "/api/pos/shifts/{id}" => till::shift_by_id, Needs(F::Till, R::View);
    }
}

/// The table as text, one route a line: `METHOD path access` (what `branch-agent routes`
/// prints, and what the integration test reads).
pub fn describe() -> String {
    table()
        .iter()
        .map(|r| {
            let access = match r.access {
                Access::Public => "public".to_string(),
                Access::Needs(f, right) => format!("{f:?}:{right:?}"),
                Access::Docs(right) => format!("Docs:{right:?}"),
                Access::Scrape => "Reports:View|metrics_token".to_string(),
            };
            format!("{} {} {access}\n", r.method, r.path)
        })
        .collect()
}

/// The router, built from the table: each route behind its own guard, the whole behind
/// the cross-site door and `edge::api`'s JSON refusals and body limit.
pub fn build(web: AgentWeb) -> axum::Router {
    let guarded = web.clone();
    let router = edge::routes::router(table(), move |handler, access| {
        handler.route_layer(axum::middleware::from_fn_with_state((guarded.clone(), access), auth::guard))
    });
    // Every answer of a route counted by its pattern and status, the guard's refusals too.
    let router = router.layer(axum::middleware::from_fn_with_state(web.shared.metrics.http.clone(), edge::metrics::count_http));
    let halted = web.clone();
    // Every refusal, axum's own included, answers JSON saying what to fix; and every
    // answer, refusals too, says when posting is stopped.
    edge::api::harden(router.layer(axum::middleware::from_fn(auth::same_site)))
        .layer(axum::middleware::map_response(move |r| say_if_halted(halted.clone(), r)))
        .with_state(web)
}

/// Every answer says when posting is stopped (the branch's history disagrees with HQ's,
/// or a write failed): header `x-branchline-posting-stopped` holds the reason (ASCII).
async fn say_if_halted(web: AgentWeb, mut r: axum::response::Response) -> axum::response::Response {
    if let Some(why) = web.shared.store.halted() {
        let ascii: String = why.chars().map(|c| if c.is_ascii_graphic() || c == ' ' { c } else { '?' }).take(300).collect();
        if let Ok(v) = axum::http::HeaderValue::from_str(&ascii) {
            r.headers_mut().insert("x-branchline-posting-stopped", v);
        }
    }
    r
}
