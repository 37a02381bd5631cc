//! `hq`: headquarters of Branchline. See `hq --help`.
//!
//! What each command does. Must not hold a rule of its own: those live in the library and
//! in `protocol`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Parser;
use hq::config::HqConfig;
use hq::identity::Identity;
use hq::server::{self, now_unix, Hq};
use hq::store::Store;
use protocol::codes::{BranchCode, ProductCode, WarehouseCode};
use protocol::profile::Product;
use tracing::info;

mod cli;

use cli::args::{AccountCmd, ApprovalCmd, BranchCmd, Cli, Command, CustomerCmd, ExportCmd, ProductCmd, ScopeCmd, SupplierCmd, UserCmd};
use cli::remote::{admin_get_json, admin_get_text, admin_post, ADMIN_LOGIN, ADMIN_SECRET_FILE};

/// Creates the local admin (an HQ admin person) once, writing its password to
/// `admin.secret` and printing it.
fn init_admin(dir: &Path, store: &Store) -> anyhow::Result<()> {
    let mut st = store.load()?;
    let login = protocol::codes::OperatorId::new(ADMIN_LOGIN)?;
    if st.people.contains_key(&login) {
        return Ok(());
    }
    let password = edge::session::random_password();
    let phc = protocol::session_token::hash_password(&password, edge::session::random_bytes())?;
    let person = protocol::people::Person {
        login,
        name: "local admin".into(),
        roles: vec![protocol::people::Role::HqAdmin],
        home: protocol::people::Home::Hq,
        scope: protocol::scope::Scope::all(),
        disabled: false,
    };
    store.add_person(&mut st, person, phc)?;
    let path = dir.join(ADMIN_SECRET_FILE);
    edge::session::write_secret(&path, format!("{ADMIN_LOGIN}\n{password}\n").as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    println!("local admin: login {ADMIN_LOGIN}, password {password} (shown once; kept in {}, mode 0600)", path.display());
    Ok(())
}

fn user_cmd_password() -> anyhow::Result<(String, bool)> {
    use std::io::{BufRead, IsTerminal};
    if !std::io::stdin().is_terminal() {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        let line = line.trim_end_matches(['\r', '\n']).to_string();
        if !line.is_empty() {
            return Ok((line, false));
        }
    }
    Ok((edge::session::random_password(), true))
}

async fn user_cmd(dir: &Path, cmd: UserCmd) -> anyhow::Result<()> {
    use hq::http::people::{person_from, person_json, AddPerson};
    match cmd {
        UserCmd::Add { login, name, roles, branch, scope } => {
            let (password, generated) = user_cmd_password()?;
            let login = protocol::codes::OperatorId::new(login)?;
            let req = AddPerson { login, name, roles, branch, scope, password: password.clone() };
            match Store::open(&store_path(dir)) {
                Ok(store) => {
                    let (person, phc) = person_from(req)?;
                    let mut st = store.load()?;
                    store.add_person(&mut st, person, phc)?;
                }
                Err(_) => {
                    let body = serde_json::json!({ "login": req.login, "name": req.name, "roles": req.roles, "branch": req.branch,
                        "scope": req.scope, "password": req.password });
                    admin_post(dir, "/api/admin/people", body).await?;
                }
            }
            println!("person {login} added");
            if generated {
                println!("password for {login} (shown once): {password}");
            }
        }
        UserCmd::List => {
            let people: Vec<serde_json::Value> = match Store::open(&store_path(dir)) {
                Ok(store) => store.load()?.people.values().map(|e| person_json(&e.person)).collect(),
                Err(_) => admin_get_json(dir, "/api/people").await?["people"].as_array().cloned().unwrap_or_default(),
            };
            for p in people {
                let s = |k: &str| p[k].as_str().unwrap_or("").to_string();
                let roles: Vec<_> = p["roles"].as_array().into_iter().flatten().filter_map(|r| r.as_str()).collect();
                let disabled = if p["disabled"] == true { "  DISABLED" } else { "" };
                println!("{:<16} {:<6} {:<36} {}  scope: {}{disabled}", s("login"), s("home"), roles.join(","), s("name"), s("scope"));
            }
        }
        UserCmd::Disable { login } => {
            let login = protocol::codes::OperatorId::new(login)?;
            match Store::open(&store_path(dir)) {
                Ok(store) => {
                    let mut st = store.load()?;
                    store.disable_person(&mut st, &login)?;
                }
                Err(_) => {
                    admin_post(dir, &format!("/api/admin/people/{login}/disable"), serde_json::json!({})).await?;
                }
            }
            println!("{login} disabled; their branch stops signing them in with its next profile");
        }
    }
    Ok(())
}

fn store_path(dir: &Path) -> PathBuf {
    dir.join("store")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    edge::stop_on_panic();
    edge::init_tracing(cli.log_json);
    let dir = &cli.data_dir;
    match cli.command {
        Command::Init => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let created = Identity::create_if_missing(dir)?;
            HqConfig::write_default_if_missing(dir)?;
            let store = Store::open(&store_path(dir))?;
            init_admin(dir, &store)?;
            store.flush()?;
            drop(store);
            let id = Identity::load(dir)?;
            println!("{} HQ in {}", if created { "initialised" } else { "already initialised:" }, dir.display());
            println!("certificate fingerprint: {}", protocol::hex::encode(&id.fingerprint()));
            println!("next: add products and branches (`hq product add`, `hq branch add`), then `hq serve`");
            println!("sign in to the HTTP API: POST /api/session {{\"login\",\"password\"}}; the CLI uses {ADMIN_SECRET_FILE} itself");
        }
        Command::Branch(cmd) => branch_cmd(dir, cmd).await?,
        Command::User(cmd) => user_cmd(dir, cmd).await?,
        Command::Routes => print!("{}", hq::http::routes::describe()),
        Command::Product(ProductCmd::Add { code, name, unit, price, prices, category }) => {
            let category = category.map(|c| protocol::scope::ScopeCode::new(&c)).transpose()?;
            if prices.len() > protocol::profile::PRICE_LEVELS_MAX {
                bail!("at most {} preset prices", protocol::profile::PRICE_LEVELS_MAX);
            }
            let prices: Vec<protocol::decimal_serde::Dec> = prices.into_iter().map(protocol::decimal_serde::Dec).collect();
            let code = ProductCode::new(code)?;
            match Store::open(&store_path(dir)) {
                Ok(store) => {
                    let mut st = store.load()?;
                    store.add_product(&mut st, code, Product { name, unit, retail_price: price, prices, category })?;
                }
                Err(_) => {
                    admin_post(
                        dir,
                        "/api/admin/products",
                        serde_json::json!({ "code": code, "name": name, "unit": unit, "retail_price": price.map(|p| p.to_string()), "prices": prices.iter().map(|p| p.0.to_string()).collect::<Vec<_>>(), "category": category }),
                    )
                    .await?;
                }
            }
            println!("product {code} saved; branches receive it on their next sync");
        }
        Command::Product(ProductCmd::Import { file, dry_run }) => import_products(dir, &file, dry_run).await?,
        Command::Product(ProductCmd::Export { out }) => {
            let csv = match Store::open(&store_path(dir)) {
                Ok(store) => hq::catalog::to_csv(&store.load()?.products),
                Err(_) => admin_get_text(dir, "/api/products?format=csv").await?,
            };
            match out {
                Some(path) => {
                    std::fs::write(&path, csv).with_context(|| format!("writing {}", path.display()))?;
                    println!("catalog written to {}", path.display());
                }
                None => print!("{csv}"),
            }
        }
        Command::Export(ExportCmd::Ledger { branch, from, to, format, out }) => {
            let req = hq::ledger_export::LedgerRequest::parse(branch.as_deref(), &from, to.as_deref(), Some(&format))?;
            let text = match Store::open(&store_path(dir)) {
                Ok(store) => {
                    let enrolled: Vec<_> = store.load()?.branches.keys().copied().collect();
                    hq::ledger_export::export(&store, &enrolled, &req)?
                }
                Err(_) => {
                    let mut path = format!("/api/export/ledger?from={}&to={}&format={format}", req.from.label(), req.to.label());
                    if let Some(b) = req.branch {
                        path.push_str(&format!("&branch={b}"));
                    }
                    admin_get_text(dir, &path).await?
                }
            };
            match out {
                Some(path) => {
                    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
                    println!("ledger written to {}", path.display());
                }
                None => print!("{text}"),
            }
        }
        Command::Customer(CustomerCmd::Limit { code, limit }) => {
            let code = protocol::codes::PartyCode::new(code)?;
            let limit = match limit.as_str() {
                "none" => None,
                l => Some(l.parse::<protocol::Decimal>().with_context(|| format!("{l:?} is not an amount (or `none`)"))?),
            };
            match Store::open(&store_path(dir)) {
                Ok(store) => {
                    let mut st = store.load()?;
                    store.set_credit_limit(&mut st, code, limit)?;
                }
                Err(_) => {
                    admin_post(
                        dir,
                        "/api/admin/credit-limits",
                        serde_json::json!({ "customer": code, "limit": limit.map(|l| l.to_string()) }),
                    )
                    .await?;
                }
            }
            println!("credit limit of {code} saved; branches receive it on their next sync");
        }
        Command::Account(AccountCmd::Overdraft { branch, account, allow }) => {
            let branch = protocol::codes::BranchCode::new(branch)?;
            let account = protocol::codes::AccountCode::parse(&account)?;
            anyhow::ensure!(protocol::books::accounts::is_money(&account), "{account} is not a cash (1001) or bank (1002) account");
            let allow = match allow.as_str() {
                "none" => None,
                a => Some(a.parse::<protocol::Decimal>().with_context(|| format!("{a:?} is not an amount (or `none`)"))?),
            };
            anyhow::ensure!(
                allow.is_none_or(|a| a >= protocol::Decimal::ZERO && a.scale() <= 2),
                "the allowance is yuan and fen, zero or more"
            );
            match Store::open(&store_path(dir)) {
                Ok(store) => {
                    let mut st = store.load()?;
                    anyhow::ensure!(st.branches.contains_key(&branch), "no branch {branch}");
                    store.set_overdraft(&mut st, branch, account, allow)?;
                }
                Err(_) => {
                    admin_post(
                        dir,
                        "/api/admin/overdrafts",
                        serde_json::json!({ "branch": branch, "account": account, "allow": allow.map(|a| a.to_string()) }),
                    )
                    .await?;
                }
            }
            println!("overdraft allowance of {branch} {account} saved; the branch receives it on its next sync");
        }
        Command::Customer(CustomerCmd::Add { code, fields, credit_limit }) => {
            party_cmd(dir, fields.to_party(&code, protocol::parties::PartyRole::Customer, credit_limit)?, fields.replace).await?
        }
        Command::Supplier(SupplierCmd::Add { code, fields }) => {
            party_cmd(dir, fields.to_party(&code, protocol::parties::PartyRole::Supplier, None)?, fields.replace).await?
        }
        Command::Scope(cmd) => scope_cmd(dir, cmd).await?,
        Command::Approval(cmd) => approval_cmd(dir, cmd).await?,
        Command::Transfer(cmd) => cli::transfer::run(dir, cmd).await?,
        Command::Serve { quic_listen, http_listen } => {
            let mut config = HqConfig::load(dir)?;
            if let Some(a) = quic_listen {
                config.quic_listen = a;
            }
            if let Some(a) = http_listen {
                config.http_listen = a;
            }
            serve(dir, config).await?;
        }
    }
    Ok(())
}

async fn party_cmd(dir: &Path, party: protocol::parties::Party, replace: bool) -> anyhow::Result<()> {
    let (role, code) = (party.role.name(), party.code);
    match Store::open(&store_path(dir)) {
        Ok(store) => {
            let mut st = store.load()?;
            store.put_party(&mut st, party, replace)?;
        }
        Err(_) => {
            admin_post(dir, &format!("/api/admin/{role}s"), serde_json::json!({ "party": party, "replace": replace })).await?;
        }
    }
    println!("{role} {code} saved; branches receive it with a new profile version");
    Ok(())
}

async fn scope_cmd(dir: &Path, cmd: ScopeCmd) -> anyhow::Result<()> {
    match cmd {
        ScopeCmd::Set { branch, scope } => {
            let branch = protocol::codes::BranchCode::new(branch)?;
            let parsed: protocol::scope::Scope = scope.parse()?;
            let closed: Vec<_> =
                protocol::scope::ScopeKind::ALL.into_iter().filter(|k| parsed.rule(*k).patterns().is_empty()).map(|k| k.name()).collect();
            let version = match Store::open(&store_path(dir)) {
                Ok(store) => {
                    let mut st = store.load()?;
                    store.set_scope(&mut st, branch, parsed.clone())?;
                    st.profile_version
                }
                Err(_) => {
                    let v = admin_post(dir, &format!("/api/admin/scopes/{branch}"), serde_json::json!({ "scope": scope })).await?;
                    v["profile_version"].as_u64().unwrap_or_default()
                }
            };
            println!("scope of {branch} is now (profile v{version}): {parsed}");
            if !closed.is_empty() {
                println!("note: {} allow nothing (name a kind with `*` to allow all of it)", closed.join(", "));
            }
        }
        ScopeCmd::Show { branch } => {
            let branch = protocol::codes::BranchCode::new(branch)?;
            let text = match Store::open(&store_path(dir)) {
                Ok(store) => {
                    let st = store.load()?;
                    let p = hq::store::profile_of(&st, &branch).with_context(|| format!("no branch {branch}"))?;
                    format!("{} (profile v{})", p.scope(), p.version)
                }
                Err(_) => {
                    let v: serde_json::Value = serde_json::from_str(&admin_get_text(dir, &format!("/api/admin/scopes/{branch}")).await?)?;
                    format!("{} (profile v{})", v["scope"].as_str().unwrap_or_default(), v["profile_version"])
                }
            };
            println!("{branch}: {text}");
        }
    }
    Ok(())
}

async fn approval_cmd(dir: &Path, cmd: ApprovalCmd) -> anyhow::Result<()> {
    match cmd {
        ApprovalCmd::Rules { gifts, stock_loss_above, below_cost, over_credit_limit } => {
            let rules = protocol::approval::ApprovalRules { gifts, stock_loss_above, below_cost, over_credit_limit };
            rules.validate().map_err(anyhow::Error::msg)?;
            let version = match Store::open(&store_path(dir)) {
                Ok(store) => {
                    let mut st = store.load()?;
                    store.set_approval_rules(&mut st, rules.clone())?;
                    st.profile_version
                }
                Err(_) => admin_post(dir, "/api/admin/approval-rules", serde_json::json!(rules)).await?["profile_version"]
                    .as_u64()
                    .unwrap_or_default(),
            };
            println!("approval rules are now (profile v{version}): {}", serde_json::json!(rules));
        }
        ApprovalCmd::List => {
            let items: serde_json::Value = match Store::open(&store_path(dir)) {
                Ok(store) => {
                    let st = store.load()?;
                    let items: Vec<_> = st
                        .approvals
                        .items
                        .iter()
                        .map(|((b, id), it)| serde_json::json!({ "branch": b, "id": id, "needs": it.draft.needs.iter().map(ToString::to_string).collect::<Vec<_>>(), "decision": it.decision, "posted_seq": it.posted_seq }))
                        .collect();
                    serde_json::json!(items)
                }
                Err(_) => serde_json::from_str::<serde_json::Value>(&admin_get_text(dir, "/api/approvals").await?)?["items"].clone(),
            };
            for it in items.as_array().into_iter().flatten() {
                let state = match (&it["decision"], &it["posted_seq"]) {
                    (_, serde_json::Value::Number(_)) => "posted".to_string(),
                    (serde_json::Value::Null, _) => "waiting".to_string(),
                    (d, _) => format!(
                        "{} by {}: {}",
                        if d["approved"] == true { "approved" } else { "refused" },
                        d["by"].as_str().unwrap_or(""),
                        d["note"].as_str().unwrap_or("")
                    ),
                };
                println!("{} {}\t{}\t{}", it["branch"].as_str().unwrap_or(""), it["id"], state, it["needs"]);
            }
        }
        ApprovalCmd::Approve { branch, id, login, note } => decide_cmd(dir, &branch, id, &login, &note, "approve").await?,
        ApprovalCmd::Refuse { branch, id, login, note } => decide_cmd(dir, &branch, id, &login, &note, "refuse").await?,
    }
    Ok(())
}

/// An auditor's decision through the running HQ's API, signed in as `login` (the admin
/// credential cannot decide: approving is the auditor's right).
async fn decide_cmd(dir: &Path, branch: &str, id: u64, login: &str, note: &str, verdict: &str) -> anyhow::Result<()> {
    cli::remote::as_person(dir, login, &format!("/api/approvals/{branch}/{id}/{verdict}"), Some(serde_json::json!({ "note": note })))
        .await?;
    println!("draft {id} of {branch}: {verdict}d; the decision goes down to the branch");
    Ok(())
}

async fn import_products(dir: &Path, file: &Path, dry_run: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
    let rows = match hq::catalog::parse_csv(&bytes) {
        Ok(rows) => rows,
        Err(problems) => {
            for p in &problems {
                eprintln!("{}: {p}", file.display());
            }
            bail!("{} problem(s) in {}; nothing was imported. Fix them and run the import again", problems.len(), file.display());
        }
    };
    if dry_run {
        println!("{}: {} products, all valid; nothing saved (--dry-run)", file.display(), rows.len());
        return Ok(());
    }
    let count = rows.len();
    let added = match Store::open(&store_path(dir)) {
        Ok(store) => {
            let mut st = store.load()?;
            store.add_products(&mut st, rows)?
        }
        Err(_) => {
            let products: Vec<serde_json::Value> = rows
                .iter()
                .map(|(code, p)| {
                    serde_json::json!({ "code": code, "name": p.name, "unit": p.unit,
                        "retail_price": p.retail_price.map(|d| d.to_string()),
                        "prices": p.prices.iter().map(|d| d.0.to_string()).collect::<Vec<_>>() })
                })
                .collect();
            let reply = admin_post(dir, "/api/admin/products/import", serde_json::json!({ "products": products })).await?;
            reply["new"].as_u64().unwrap_or(0) as usize
        }
    };
    println!(
        "imported {count} products from {} ({added} new, {} updated); branches receive them on their next sync",
        file.display(),
        count - added
    );
    Ok(())
}

async fn branch_cmd(dir: &Path, cmd: BranchCmd) -> anyhow::Result<()> {
    let config = HqConfig::load(dir)?;
    let ttl = config.token_ttl_hours * 3600;
    let token = match cmd {
        BranchCmd::Add { code, name, warehouses } => {
            let code = BranchCode::new(code)?;
            let whs = warehouses.iter().map(WarehouseCode::new).collect::<Result<BTreeSet<_>, _>>()?;
            match Store::open(&store_path(dir)) {
                Ok(store) => {
                    let id = Identity::load(dir)?;
                    let mut st = store.load()?;
                    let secret = store.add_branch(&mut st, code, name, whs, now_unix(), ttl)?;
                    protocol::token::EnrollToken { branch: code, secret, hq_cert_fingerprint: id.fingerprint() }.encode()
                }
                Err(_) => {
                    let v =
                        admin_post(dir, "/api/admin/branches", serde_json::json!({ "code": code, "name": name, "warehouses": warehouses }))
                            .await?;
                    v["token"].as_str().context("admin API returned no token")?.to_string()
                }
            }
        }
        BranchCmd::Token { code } => {
            let code = BranchCode::new(code)?;
            match Store::open(&store_path(dir)) {
                Ok(store) => {
                    let id = Identity::load(dir)?;
                    let mut st = store.load()?;
                    let (secret, revoked) = store.new_token(&mut st, &code, now_unix(), ttl)?;
                    if revoked.is_some() {
                        eprintln!("branch {code}'s enrolled key is revoked; it must enroll again with this token");
                    }
                    protocol::token::EnrollToken { branch: code, secret, hq_cert_fingerprint: id.fingerprint() }.encode()
                }
                Err(_) => {
                    let v = admin_post(dir, &format!("/api/admin/branches/{code}/token"), serde_json::json!({})).await?;
                    v["token"].as_str().context("admin API returned no token")?.to_string()
                }
            }
        }
        BranchCmd::Revoke { code, reason } => {
            let code = BranchCode::new(code)?;
            let revoked = match Store::open(&store_path(dir)) {
                Ok(store) => {
                    let mut st = store.load()?;
                    store.revoke_branch_key(&mut st, &code, &reason, now_unix())?.is_some()
                }
                Err(_) => {
                    let v = admin_post(dir, &format!("/api/admin/branches/{code}/revoke"), serde_json::json!({ "reason": reason })).await?;
                    v["revoked"].as_bool().unwrap_or(false)
                }
            };
            match revoked {
                true => println!("branch {code}'s key is revoked; it is refused until it enrolls again (`hq branch token {code}`)"),
                false => println!("branch {code} has no enrolled key; nothing to revoke"),
            }
            return Ok(());
        }
        BranchCmd::List => {
            let store = Store::open(&store_path(dir))?;
            let st = store.load()?;
            println!("{:<6} {:<20} {:>8} {:>10} {:>6}  warehouses", "code", "name", "enrolled", "applied", "rej");
            for b in st.branches.values() {
                let whs: Vec<_> = b.warehouses.iter().map(|w| w.as_str()).collect();
                println!("{:<6} {:<20} {:>8} {:>10} {:>6}  {}", b.code, b.name, b.key.is_some(), b.head.seq, b.rejections, whs.join(","));
            }
            return Ok(());
        }
    };
    println!("{token}");
    eprintln!(
        "one-time token, valid {} h. On the branch machine run:\n  branch-agent enroll --hq <HQ-ADDRESS>:{} --token {token} --data-dir <DIR>",
        config.token_ttl_hours,
        config.quic_listen.port()
    );
    Ok(())
}

async fn serve(dir: &Path, config: HqConfig) -> anyhow::Result<()> {
    let identity = Identity::load(dir)?;
    let store = Store::open(&store_path(dir))?;
    let mut state = store.load().context("loading HQ state (a checksum error means the store is damaged)")?;
    state.down.key = Some(identity.down_key.clone());
    info!(branches = state.branches.len(), products = state.products.len(), "state loaded");
    let endpoint = server::endpoint(&identity, &config, config.quic_listen)?;
    let quic_addr = endpoint.local_addr()?;
    let http =
        tokio::net::TcpListener::bind(config.http_listen).await.with_context(|| format!("binding HTTP on {}", config.http_listen))?;
    let http_addr = http.local_addr()?;
    let hq = Arc::new(Hq::new(store, state, config, identity.fingerprint()));
    // Machine-readable lines first: tests and the demo wait for these.
    println!("quic-listening {quic_addr}");
    println!("http-listening http://{http_addr}");
    info!(%quic_addr, %http_addr, "HQ serving");
    let quic = tokio::spawn(server::serve_quic(hq.clone(), endpoint.clone()));
    let session_key = edge::session::load_or_create_session_key(dir).context("reading or creating the session key")?;
    let app = hq::http::router(hq.clone(), session_key);
    let web = tokio::spawn(async move { axum::serve(http, app).await });
    tokio::select! {
        _ = tokio::signal::ctrl_c() => info!("stopping"),
        r = quic => bail!("QUIC listener ended: {r:?}"),
        r = web => bail!("HTTP listener ended: {r:?}"),
    }
    endpoint.close(0u32.into(), b"hq stopping");
    hq.store.flush()?;
    Ok(())
}
