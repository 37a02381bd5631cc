//! People over HTTP: list (without password hashes), add, disable. The CLI's `hq user`
//! comes here while HQ runs. Each change moves the profile version and is pushed to the
//! person's branch, so the branch can sign them in (or stop doing so) while offline.
//! Must not decide rights (the route table and `protocol::people` do).

use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::Json;
use protocol::codes::{BranchCode, OperatorId};
use protocol::people::{Home, Person, Role};
use protocol::scope::Scope;
use serde::Deserialize;
use serde_json::{json, Value};

use super::auth::{Session, Web};
use super::{bad, internal, ApiError};
use crate::store::PeopleError;

/// A role as the CLI and the API spell it: `hq-auditor`, `hq-admin`, `branch-accountant`,
/// `warehouse-clerk`, `cashier`, `technician`.
pub fn parse_role(text: &str) -> Option<Role> {
    Role::ALL.into_iter().find(|r| role_slug(*r) == text)
}

pub fn role_slug(role: Role) -> String {
    role.name().replace("HQ", "hq").replace(' ', "-")
}

/// A person as listed: everything but the password hash.
pub fn person_json(p: &Person) -> Value {
    let home = match p.home {
        Home::Hq => "HQ".to_string(),
        Home::Branch(b) => b.to_string(),
    };
    json!({ "login": p.login, "name": p.name, "roles": p.roles.iter().map(|r| role_slug(*r)).collect::<Vec<_>>(),
            "home": home, "scope": p.scope.to_string(), "disabled": p.disabled })
}

pub async fn list(State(web): State<Web>) -> Json<Value> {
    let st = web.hq.state();
    Json(json!({ "people": st.people.values().map(|e| person_json(&e.person)).collect::<Vec<_>>() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddPerson {
    pub login: OperatorId,
    #[serde(default)]
    pub name: String,
    pub roles: Vec<String>,
    /// Home branch; HQ without one.
    #[serde(default)]
    pub branch: Option<String>,
    /// Scope text (`customers=200*; ...`); every code of every kind without one.
    #[serde(default)]
    pub scope: Option<String>,
    pub password: String,
}

/// Why a request to add a person names no valid person.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BadPerson {
    /// A role no person can have.
    #[error("unknown role {0:?}")]
    Role(String),
    /// The home branch is not a branch code.
    #[error("{0}")]
    Branch(protocol::error::CodeError),
    /// The scope text does not parse.
    #[error("{0}")]
    Scope(protocol::scope::ScopeParseError),
    /// The person breaks a rule of `Person::validate`.
    #[error("{0}")]
    Person(protocol::people::PersonError),
    /// The password could not be hashed (too long, or argon2 refused it).
    #[error("{0}")]
    Password(protocol::session_token::PasswordError),
}

/// A person from the request, with the password hashed (argon2id, fresh salt).
pub fn person_from(req: AddPerson) -> Result<(Person, String), BadPerson> {
    let roles = req.roles.iter().map(|r| parse_role(r).ok_or_else(|| BadPerson::Role(r.clone()))).collect::<Result<Vec<_>, _>>()?;
    let home = match req.branch {
        Some(b) => Home::Branch(BranchCode::new(b).map_err(BadPerson::Branch)?),
        None => Home::Hq,
    };
    let scope = match req.scope {
        Some(s) => s.parse::<Scope>().map_err(BadPerson::Scope)?,
        None => Scope::all(),
    };
    let person = Person { login: req.login, name: req.name, roles, home, scope, disabled: false };
    person.validate().map_err(BadPerson::Person)?;
    let phc = protocol::session_token::hash_password(&req.password, edge::session::random_bytes()).map_err(BadPerson::Password)?;
    Ok((person, phc))
}

fn refused(e: PeopleError) -> ApiError {
    match e {
        PeopleError::Store(e) => internal(e),
        other => ApiError(StatusCode::CONFLICT, other.to_string()),
    }
}

pub async fn add(
    State(web): State<Web>,
    Extension(by): Extension<Session>,
    edge::api::ApiJson(req): edge::api::ApiJson<AddPerson>,
) -> Result<Json<Value>, ApiError> {
    let (person, phc) = tokio::task::spawn_blocking(move || person_from(req)).await.map_err(internal)?.map_err(bad)?;
    let shown = person_json(&person);
    {
        let mut st = web.hq.state();
        web.hq.store.add_person(&mut st, person, phc).map_err(refused)?;
    }
    web.hq.profile_changed();
    tracing::info!(by = %by.person.login, person = %shown["login"], "person added");
    Ok(Json(shown))
}

pub async fn disable(
    State(web): State<Web>,
    Extension(by): Extension<Session>,
    edge::api::ApiPath(login): edge::api::ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let login = OperatorId::new(login).map_err(bad)?;
    {
        let mut st = web.hq.state();
        web.hq.store.disable_person(&mut st, &login).map_err(refused)?;
    }
    web.hq.profile_changed();
    tracing::warn!(by = %by.person.login, person = %login, "person disabled");
    Ok(Json(json!({ "login": login, "disabled": true })))
}

#[cfg(test)]
mod tests {
    use super::*;

    const START: &str = "<!-- roles table: generated from protocol::people::roles_table_markdown(); a test checks it -->\n";
    const END: &str = "<!-- end roles table -->";

    /// README's roles table is the one the code grants. `BRANCHLINE_BLESS=1` rewrites it.
    #[test]
    fn readme_roles_table_is_the_code() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md");
        let readme = std::fs::read_to_string(&path).expect("README.md");
        let (Some(a), Some(b)) = (readme.find(START), readme.find(END)) else { panic!("README has no roles table markers") };
        let table = protocol::people::roles_table_markdown();
        let shown = &readme[a + START.len()..b];
        if shown != table && std::env::var_os("BRANCHLINE_BLESS").is_some() {
            let fixed = format!("{}{START}{table}{}", &readme[..a], &readme[b..]);
            std::fs::write(&path, fixed).expect("writing README.md");
            return;
        }
        assert_eq!(shown, table, "README's roles table is stale: run with BRANCHLINE_BLESS=1");
    }

    #[test]
    fn every_role_has_a_cli_name() {
        for role in Role::ALL {
            assert_eq!(parse_role(&role_slug(role)), Some(role));
        }
        assert_eq!(role_slug(Role::HqAuditor), "hq-auditor");
        assert_eq!(role_slug(Role::WarehouseClerk), "warehouse-clerk");
        assert_eq!(parse_role("boss"), None);
    }

    #[test]
    fn the_route_table_is_closed_but_for_sign_in_and_the_probes() {
        let table = crate::http::routes::table();
        let public: Vec<_> =
            table.iter().filter(|r| r.access == crate::http::auth::Access::Public).map(|r| format!("{} {}", r.method, r.path)).collect();
        // The status page, sign-in, and the probes that carry no data.
        assert_eq!(public, ["GET /", "POST /api/session", "GET /healthz", "GET /readyz"]);
        assert!(
            table.iter().any(|r| r.path == "/metrics" && r.access == crate::http::auth::Access::Scrape),
            "/metrics takes the scrape token or Reports:View"
        );
        let mut seen = std::collections::BTreeSet::new();
        for r in &table {
            assert!(seen.insert((r.method.to_string(), r.path)), "{} {} twice", r.method, r.path);
        }
    }
}
