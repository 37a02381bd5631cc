//! How both binaries' HTTP APIs refuse a request: always `{"error": "..."}` in JSON, in
//! the API's words, saying what to fix. Holds the extractors handlers use instead of
//! axum's (`ApiJson`, `ApiPath`), the one middleware that turns whatever axum itself
//! answers (unknown path, wrong method, body over the limit, a bad query) into the same
//! JSON shape, and the bounds on a request body (`BODY_BYTES_MAX`, `JSON_DEPTH_MAX`).
//!
//! Must not touch: rights (the route tables and guards decide who may call what), the
//! meaning of any request (handlers and `protocol` decide that). This is only the shape
//! and wording of refusals, and the limits that apply before a handler sees a byte.
//!
//! Status codes: 400 for a body or path that is not what the API reads (not JSON, nested
//! too deep, `abc` for a number), 422 for JSON of the wrong shape (a float for a
//! quantity, an unknown field), 413 over the size limit, 415 not JSON, 404 no such route,
//! 405 a method the path does not take (with `Allow`).

use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{FromRequest, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

/// Largest request body either API reads (axum's own default, now named and said in
/// the refusal): the biggest request is a catalog import, ~10,000 products.
pub const BODY_BYTES_MAX: usize = 2 * 1024 * 1024;

/// Deepest JSON nesting a request may have. No request of either API needs more than
/// about five levels (a document's `ext.balances[0].kind.Receivable`); the bound keeps a
/// hostile body (5,000 nested arrays in `ext`) from costing recursion, and is checked on
/// the raw bytes before any parsing.
pub const JSON_DEPTH_MAX: usize = 32;

/// Longest piece of a refused body text quoted back.
const QUOTED_BYTES_MAX: usize = 2048;

/// A refusal: a status and a sentence saying what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: StatusCode,
    pub error: String,
}

impl Refusal {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Refusal {
        Refusal { status, error: error.into() }
    }

    fn too_large() -> Refusal {
        Refusal::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "the request body is larger than {BODY_BYTES_MAX} bytes ({} MiB), the most this API takes; send it in smaller parts",
                BODY_BYTES_MAX / (1024 * 1024)
            ),
        )
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let too_large = self.status == StatusCode::PAYLOAD_TOO_LARGE;
        let mut out = (self.status, axum::Json(serde_json::json!({ "error": self.error }))).into_response();
        // The refused body was never read to its end, so this connection cannot carry
        // another request: say so, or a client's pool reuses it and its next request
        // fails with a reset (a CI run saw exactly that after the oversized test).
        if too_large {
            out.headers_mut().insert(header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        }
        out
    }
}

/// Does the JSON text nest arrays/objects deeper than `max`? A scan of the bytes that
/// skips strings (and their escapes); it does not validate, the parser does that after.
pub fn nests_deeper_than(body: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Reads a JSON request body into `T`, refusing in the API's words: the field's path,
/// what it must be, what was given.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(Refusal::new(StatusCode::BAD_REQUEST, "the request needs a JSON body"));
    }
    if nests_deeper_than(body, JSON_DEPTH_MAX) {
        return Err(Refusal::new(
            StatusCode::BAD_REQUEST,
            format!("the JSON is nested deeper than {JSON_DEPTH_MAX} levels; no request of this API needs that"),
        ));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        json_refusal(&path, &e.into_inner())
    })?;
    de.end().map_err(|e| json_refusal(".", &e))?;
    Ok(value)
}

fn json_refusal(path: &str, e: &serde_json::Error) -> Refusal {
    use serde_json::error::Category;
    // serde_json appends " at line L column C"; keep the place separately.
    let text = e.to_string();
    let (msg, place) = match text.rfind(" at line ") {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text.as_str(), ""),
    };
    match e.classify() {
        Category::Data => Refusal::new(StatusCode::UNPROCESSABLE_ENTITY, format!("{} ({place})", in_api_words(path, msg))),
        Category::Eof => Refusal::new(StatusCode::BAD_REQUEST, format!("the body is not valid JSON: it ends early ({place})")),
        Category::Syntax | Category::Io => Refusal::new(StatusCode::BAD_REQUEST, format!("the body is not valid JSON: {msg} ({place})")),
    }
}

/// serde's messages, rephrased with the field's path: "invalid type: floating point
/// `2.5`, expected a decimal string like \"2.5\"" at `lines[0].qty` becomes
/// "lines[0].qty must be a decimal string like \"2.5\", not floating point `2.5`".
fn in_api_words(path: &str, msg: &str) -> String {
    let field = |name: &str| if path == "." || path.is_empty() { name.to_string() } else { format!("{path}.{name}") };
    let at = if path == "." || path.is_empty() { "the request".to_string() } else { path.to_string() };
    for prefix in ["invalid type: ", "invalid value: ", "invalid length "] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            if let Some((given, expected)) = rest.split_once(", expected ") {
                return format!("{at} must be {expected}, not {given}");
            }
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        if let Some((name, allowed)) = rest.split_once('`') {
            // serde_path_to_error may already have the unknown key as the last segment.
            let name_path = if path.ends_with(name) { path.to_string() } else { field(name) };
            let allowed = allowed.trim_start_matches(", ").replace("expected one of ", "").replace("expected ", "");
            let allowed = if allowed.is_empty() || allowed.starts_with("there are no fields") { "none".to_string() } else { allowed };
            return format!("{name_path} is not a field here (a typo?); the fields allowed are {allowed}");
        }
    }
    if let Some(rest) = msg.strip_prefix("missing field `") {
        if let Some((name, _)) = rest.split_once('`') {
            return format!("{} is required", field(name));
        }
    }
    if let Some(rest) = msg.strip_prefix("unknown variant `") {
        if let Some((name, allowed)) = rest.split_once('`') {
            let allowed = allowed.trim_start_matches(", ").replace("expected one of ", "").replace("expected ", "");
            return format!("{at}: `{name}` is not one of {allowed}");
        }
    }
    format!("{at}: {msg}")
}

/// A JSON request body, refused in the API's words (see [`decode`]). Also insists on
/// `Content-Type: application/json` (415 otherwise) and the body limit (413).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Refusal;

    async fn from_request(req: Request, state: &S) -> Result<Self, Refusal> {
        if !is_json(req.headers()) {
            return Err(Refusal::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "this API takes Content-Type: application/json only"));
        }
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(body_refusal)?;
        decode(&bytes).map(ApiJson)
    }
}

/// Is the request's content type JSON?
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.split(';').next().is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")))
}

/// A request body as bytes, with the size refusal in JSON: for handlers that decode
/// themselves with [`decode`].
pub struct ApiBytes(pub axum::body::Bytes);

impl<S: Send + Sync> FromRequest<S> for ApiBytes {
    type Rejection = Refusal;

    async fn from_request(req: Request, state: &S) -> Result<Self, Refusal> {
        axum::body::Bytes::from_request(req, state).await.map(ApiBytes).map_err(body_refusal)
    }
}

fn body_refusal(e: BytesRejection) -> Refusal {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        Refusal::too_large()
    } else {
        Refusal::new(e.status(), format!("the request body could not be read: {}", e.body_text()))
    }
}

/// Path parameters, refused as "seq must be a whole number (got \"abc\")".
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Refusal;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Refusal> {
        use axum::extract::path::ErrorKind;
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(PathRejection::FailedToDeserializePathParams(e)) => {
                // The route's template names the parameters in order: `/api/documents/{seq}`.
                let template = parts.extensions.get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
                let names: Vec<&str> = template.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect();
                let say = |name: &str, value: &str, ty: &str| format!("{name} must be {} (got {value:?})", type_words(ty));
                let text = match e.kind() {
                    ErrorKind::ParseErrorAtKey { key, value, expected_type } => say(key, value, expected_type),
                    ErrorKind::ParseErrorAtIndex { index, value, expected_type } => {
                        say(names.get(*index).copied().unwrap_or("a path parameter"), value, expected_type)
                    }
                    ErrorKind::ParseError { value, expected_type } => {
                        say(names.first().copied().unwrap_or("the path parameter"), value, expected_type)
                    }
                    other => format!("bad path: {other}"),
                };
                Err(Refusal::new(StatusCode::BAD_REQUEST, text))
            }
            Err(e) => Err(Refusal::new(e.status(), e.body_text())),
        }
    }
}

fn type_words(rust_type: &str) -> String {
    match rust_type {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number (may be negative)".into(),
        other => format!("a {}", other.rsplit("::").next().unwrap_or(other)),
    }
}

/// Middleware, outermost on both routers: any refusal that is not already JSON (axum's
/// own 404 / 405 / 413 / query rejections, a plain-text error) becomes `{"error"}` with
/// what to fix. JSON refusals and pages pass through untouched.
pub async fn json_refusals(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path: String = req.uri().path().chars().take(200).collect();
    let resp = next.run(req).await;
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return resp;
    }
    let ct = resp.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    if ct.starts_with("application/json") || ct.starts_with("text/html") {
        return resp;
    }
    let allow = resp.headers().get(header::ALLOW).cloned();
    let text = match axum::body::to_bytes(resp.into_body(), QUOTED_BYTES_MAX).await {
        Ok(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Err(_) => String::new(),
    };
    let error = match status {
        StatusCode::NOT_FOUND => format!("there is no route {path}; `hq routes` and `branch-agent routes` list them"),
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = allow.as_ref().and_then(|a| a.to_str().ok()).unwrap_or("none").to_string();
            format!("{method} is not allowed on {path}; allowed: {allowed}")
        }
        StatusCode::PAYLOAD_TOO_LARGE => Refusal::too_large().error,
        _ if text.is_empty() => status.canonical_reason().unwrap_or("refused").to_string(),
        // axum's query rejection reads "Failed to deserialize query string: …".
        _ => text.replace("Failed to deserialize query string", "the query string is not what this route reads"),
    };
    let mut out = Refusal::new(status, error).into_response();
    if let Some(a) = allow {
        out.headers_mut().insert(header::ALLOW, a);
    }
    out
}

/// The answer to a method a path does not take: 405, JSON naming the allowed methods,
/// and `Allow`. The route tables attach it to each path (`route_layer` loses axum's own
/// `Allow` header).
pub fn wrong_method(method: &axum::http::Method, path: &str, allowed: &[axum::http::Method]) -> Response {
    let list = allowed.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ");
    let path: String = path.chars().take(200).collect();
    let mut out =
        Refusal::new(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed on {path}; allowed: {list}")).into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&list) {
        out.headers_mut().insert(header::ALLOW, v);
    }
    out
}

/// The layers both routers put outermost: the body limit and the JSON refusals.
pub fn harden<S: Clone + Send + Sync + 'static>(router: axum::Router<S>) -> axum::Router<S> {
    router.layer(axum::extract::DefaultBodyLimit::max(BODY_BYTES_MAX)).layer(axum::middleware::from_fn(json_refusals))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Line {
        #[serde(with = "protocol::decimal_serde")]
        qty: protocol::Decimal,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Req {
        doc_type: String,
        #[serde(default)]
        lines: Vec<Line>,
        #[serde(default)]
        ext: protocol::document::DocExt,
    }

    fn refuse(body: &str) -> Refusal {
        decode::<Req>(body.as_bytes()).expect_err(body)
    }

    #[test]
    fn a_float_quantity_is_refused_in_the_apis_words() {
        let r = refuse(r#"{"doc_type":"XS","lines":[{"qty":2.5}]}"#);
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.error.starts_with(r#"lines[0].qty must be a decimal string like "2.5", not floating point `2.5`"#), "{}", r.error);
        assert!(!r.error.contains("untagged"), "{}", r.error);
    }

    #[test]
    fn unknown_fields_name_the_field_and_those_allowed() {
        let r = refuse(r#"{"doc_type":"JH","ext":{"acount":"1001"}}"#);
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(r.error.starts_with("ext.acount is not a field here"), "{}", r.error);
        assert!(r.error.contains("`account`") && r.error.contains("`to_warehouse`"), "{}", r.error);
        let r = refuse(r#"{"doc_type":"JH","memmo":"x"}"#);
        assert!(r.error.starts_with("memmo is not a field here"), "{}", r.error);
        assert!(refuse(r#"{"lines":[]}"#).error.starts_with("doc_type is required"));
    }

    #[test]
    fn malformed_empty_trailing_and_deep_json_are_400() {
        for body in ["{", "{\"doc_type\":}", "", "  ", r#"{"doc_type":"XS"} x"#] {
            assert_eq!(refuse(body).status, StatusCode::BAD_REQUEST, "{body}");
        }
        let deep = format!(r#"{{"doc_type":"XS","ext":{{"settles":{}{}}}}}"#, "[".repeat(5000), "]".repeat(5000));
        let r = refuse(&deep);
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(r.error.contains("nested deeper than 32 levels"), "{}", r.error);
        // Brackets inside strings do not count.
        let s = format!(r#"{{"doc_type":"{}"}}"#, "[{".repeat(100));
        assert!(decode::<Req>(s.as_bytes()).is_ok());
        assert!(!nests_deeper_than(br#"{"a":"\"[[[[["}"#, 1));
        assert!(nests_deeper_than(b"[[[", 2) && !nests_deeper_than(b"[[]]", 2));
    }
}
