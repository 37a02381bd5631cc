//! A route table's shape and the router built from it, for both binaries: a row is
//! (method, path, access, handler); `router` merges the rows of one path, puts each row
//! behind the guard its table gives it, and answers a wrong method on a known path with
//! the methods the path takes (`api::wrong_method`).
//!
//! Must not decide who may call what: `access` is opaque here, and the guard that reads
//! it is the binary's own (`hq::http::auth::guard`, `branch-agent`'s `auth::guard`).

use std::collections::BTreeMap;

use axum::http::Method;
use axum::routing::MethodRouter;

/// One row of a route table. `A` is the binary's own description of who may call it.
pub struct Route<S, A> {
    pub method: Method,
    pub path: &'static str,
    pub access: A,
    pub handler: MethodRouter<S>,
}

/// Builds rows from `METHOD "path" => handler, access;` lines (in a crate that depends
/// on axum).
#[macro_export]
macro_rules! route_table {
    ($($method:ident $path:literal => $handler:path, $access:expr;)*) => {
        vec![$($crate::routes::Route {
            method: axum::http::Method::$method,
            path: $path,
            access: $access,
            handler: axum::routing::on(axum::routing::MethodFilter::$method, $handler),
        }),*]
    };
}

/// The router of `table`: one method router per path (its rows merged, each behind
/// `guard(handler, access)`), whose fallback names the methods the path takes. Layers
/// over the whole (refusal shape, body limit) are the caller's.
pub fn router<S, A>(table: Vec<Route<S, A>>, guard: impl Fn(MethodRouter<S>, A) -> MethodRouter<S>) -> axum::Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let mut paths: BTreeMap<&'static str, (MethodRouter<S>, Vec<Method>)> = BTreeMap::new();
    for route in table {
        let guarded = guard(route.handler, route.access);
        let entry = paths.entry(route.path).or_insert_with(|| (MethodRouter::new(), Vec::new()));
        entry.0 = std::mem::take(&mut entry.0).merge(guarded);
        entry.1.push(route.method);
    }
    let mut router = axum::Router::new();
    for (path, (methods, allowed)) in paths {
        let fallback = move |req: axum::extract::Request| {
            let allowed = allowed.clone();
            async move { crate::api::wrong_method(req.method(), req.uri().path(), &allowed) }
        };
        router = router.route(path, methods.fallback(fallback));
    }
    router
}
