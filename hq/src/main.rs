//! `hq`: headquarters of Branchline. See `hq --help`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};
use hq::config::HqConfig;
use hq::identity::Identity;
use hq::server::{self, now_unix, Hq};
use hq::store::Store;
use protocol::codes::{BranchCode, ProductCode, WarehouseCode};
use protocol::profile::Product;
use tracing::info;

/// Branchline HQ: verifies and merges signed document batches from branches exactly once,
/// enforces each branch's scope, and serves consolidated reports over HTTP.
///
/// Typical first run:
///   hq init --data-dir /var/lib/branchline-hq
///   hq product add 6901234567892 --name "矿泉水 550ml" --data-dir ...
///   hq branch add SH --name 上海分公司 --warehouse SH01 --warehouse SH01-T --data-dir ...
///   hq serve --data-dir ...
#[derive(Parser)]
#[command(name = "hq", version, about, long_about = None, verbatim_doc_comment)]
struct Cli {
    /// Directory holding HQ's identity, config (hq.toml) and store.
    #[arg(long, global = true, env = "BRANCHLINE_HQ_DIR", default_value = "./hq-data")]
    data_dir: PathBuf,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create HQ's identity (key and self-signed certificate) and a default hq.toml.
    Init,
    /// Manage branches (stores, offices).
    #[command(subcommand)]
    Branch(BranchCmd),
    /// Manage the product catalog (HQ is the only place products are edited).
    #[command(subcommand)]
    Product(ProductCmd),
    /// Manage customers (master records with code, name, category and credit limit 信用额度).
    #[command(subcommand)]
    Customer(CustomerCmd),
    /// Branches' cash and bank accounts: how far below zero each may go.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Manage the people who sign in, at HQ and at the branches.
    #[command(subcommand)]
    User(UserCmd),
    /// Print the HTTP route table: method, path, and the right each route needs.
    #[command(hide = true)]
    Routes,
    /// Manage suppliers (master records with code, name and category).
    #[command(subcommand)]
    Supplier(SupplierCmd),
    /// A branch's scope (管辖范围) over warehouses, categories, customers, suppliers,
    /// employees, accounts, expenses and incomes; each change is a new profile version.
    #[command(subcommand)]
    Scope(ScopeCmd),
    /// Run the QUIC listener for branches and the HTTP listener for reports.
    Serve {
        /// Override quic_listen from hq.toml (UDP address).
        #[arg(long)]
        quic_listen: Option<std::net::SocketAddr>,
        /// Override http_listen from hq.toml.
        #[arg(long)]
        http_listen: Option<std::net::SocketAddr>,
    },
}

#[derive(Subcommand)]
enum BranchCmd {
    /// Add a branch and print its one-time enrollment token.
    Add {
        /// Branch letter code, e.g. SH, HB, SCCD.
        code: String,
        /// Display name, e.g. 上海分公司.
        #[arg(long)]
        name: String,
        /// A warehouse the branch may post to (repeat for each).
        #[arg(long = "warehouse", required = true)]
        warehouses: Vec<String>,
    },
    /// Issue a new one-time enrollment token for an existing branch (reinstalled store).
    /// Revokes the branch's enrolled key: the old installation is refused from then on.
    Token { code: String },
    /// Revoke a branch's enrolled key: its connections are closed and refused until it
    /// enrolls again with a new token (`hq branch token`).
    Revoke {
        code: String,
        /// Why, kept with the revocation and shown to the branch.
        #[arg(long, default_value = "revoked by an HQ administrator")]
        reason: String,
    },
    /// List branches and their sync status.
    List,
}

#[derive(Subcommand)]
enum ProductCmd {
    /// Add or update a product; branches receive it with their next sync.
    Add {
        /// Product code (often the barcode).
        code: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "")]
        unit: String,
        /// Retail (till) price, e.g. 2.50.
        #[arg(long)]
        price: Option<protocol::Decimal>,
        /// Preset selling prices 1-4, comma-separated, e.g. 2.30,2.20,2.10,1.99; a sale
        /// line may name a level (`price_level`) instead of a price.
        #[arg(long, value_delimiter = ',')]
        prices: Vec<protocol::Decimal>,
        /// Product category code (商品类别), e.g. 01: what scope's category rule runs over.
        #[arg(long)]
        category: Option<String>,
    },
    /// Add or update many products from a CSV file (Excel: "Save as CSV"; UTF-8 or
    /// GBK). Columns by header name, any order: code, name (required), unit,
    /// retail_price, price1..price4. All or nothing: every problem is listed with its
    /// line number and nothing is saved until the file is clean. One profile change
    /// for the branches, however many products.
    Import {
        /// The CSV file; `hq product export` writes one to start from.
        file: PathBuf,
        /// Check the file and say what would change, without saving.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write the catalog as CSV (the columns `import` reads), to stdout or `--out`.
    Export {
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum CustomerCmd {
    /// Add a customer: `hq customer add 200102 --name 上海一店 --category 2001 --credit-limit 5000`.
    Add {
        /// Customer code, e.g. 200102 (never the code of a supplier).
        code: String,
        #[command(flatten)]
        fields: PartyFields,
        /// The most the customer may owe; a credit sale above it is refused.
        #[arg(long)]
        credit_limit: Option<protocol::Decimal>,
    },
    /// Set a customer's credit limit; a credit sale that would take the customer's
    /// receivable above it is refused at the branch.
    Limit {
        /// Customer code, e.g. 200102.
        code: String,
        /// The limit in yuan, e.g. 5000.00; `none` removes it.
        limit: String,
    },
}

#[derive(Subcommand)]
enum AccountCmd {
    /// Allow a branch's cash/bank account to go below zero by at most an amount (an
    /// overdraft facility): `hq account overdraft SH 1002.ICBC 50000`. Without one, a
    /// document that would take cash or bank below zero is refused.
    Overdraft {
        /// Branch code, e.g. SH.
        branch: String,
        /// A cash (1001…) or bank (1002…) account, e.g. 1002.ICBC.
        account: String,
        /// The allowance in yuan, e.g. 50000.00; `none` removes it.
        allow: String,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Add a person. The password is read from stdin (one line) if stdin is not a
    /// terminal; otherwise one is generated and printed once.
    Add {
        /// Sign-in name, e.g. li.jia; also the operator their documents name.
        login: String,
        #[arg(long, default_value = "")]
        name: String,
        /// hq-auditor, hq-admin, branch-accountant, warehouse-clerk, cashier or technician
        /// (repeat for several).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// The person's branch; without it they work at HQ.
        #[arg(long)]
        branch: Option<String>,
        /// The person's scope within the branch's, e.g. 'warehouses=SH01; categories=01*;
        /// customers=200*'; a kind left out allows nothing. Default: everything.
        #[arg(long)]
        scope: Option<String>,
    },
    /// List people (never their password hashes).
    List,
    /// Disable a person: they can no longer sign in, at HQ or at their branch.
    Disable { login: String },
}

/// The local admin credential `hq init` writes: `login` and `password` lines, mode 0600.
const ADMIN_SECRET_FILE: &str = "admin.secret";
const ADMIN_LOGIN: &str = "admin";

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
                    let (person, phc) = person_from(req).map_err(anyhow::Error::msg)?;
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

#[derive(Subcommand)]
enum SupplierCmd {
    /// Add a supplier: `hq supplier add 900001 --name 供应商 --category 90`.
    Add {
        /// Supplier code (never the code of a customer).
        code: String,
        #[command(flatten)]
        fields: PartyFields,
    },
}

/// What a customer and a supplier record share.
#[derive(clap::Args)]
struct PartyFields {
    #[arg(long)]
    name: String,
    /// Category code (customer or supplier class), e.g. 2001.
    #[arg(long)]
    category: Option<String>,
    #[arg(long, default_value = "")]
    region: String,
    /// Change an existing record instead of adding a new one.
    #[arg(long)]
    replace: bool,
}

#[derive(Subcommand)]
enum ScopeCmd {
    /// Replace a branch's scope: `hq scope set SH 'warehouses=SH01; categories=01; customers=200*; suppliers=*; employees=*; accounts=*; expenses=*; incomes=*'`.
    /// Patterns: a code, `prefix*`, `lo..hi` or `*`; a kind left out allows nothing.
    Set { branch: String, scope: String },
    /// Print a branch's scope (every kind).
    Show { branch: String },
}

fn store_path(dir: &Path) -> PathBuf {
    dir.join("store")
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
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

impl PartyFields {
    fn to_party(
        &self,
        code: &str,
        role: protocol::parties::PartyRole,
        credit_limit: Option<protocol::Decimal>,
    ) -> anyhow::Result<protocol::parties::Party> {
        let party = protocol::parties::Party {
            code: protocol::codes::PartyCode::new(code)?,
            role,
            name: self.name.clone(),
            category: self.category.as_deref().map(protocol::scope::ScopeCode::new).transpose()?,
            credit_limit,
            region: self.region.clone(),
            notes: String::new(),
        };
        party.validate()?;
        Ok(party)
    }
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

/// Signs in to a running HQ as the local admin (`admin.secret`, written by `hq init`).
async fn admin_session(dir: &Path, base: &str) -> anyhow::Result<String> {
    let path = dir.join(ADMIN_SECRET_FILE);
    let text = std::fs::read_to_string(&path).with_context(|| format!("reading the local admin credential {}", path.display()))?;
    let mut lines = text.lines();
    let (Some(login), Some(password)) = (lines.next(), lines.next()) else {
        bail!("{} should hold a login line and a password line", path.display());
    };
    let resp = reqwest::Client::new()
        .post(format!("{base}/api/session"))
        .json(&serde_json::json!({ "login": login, "password": password }))
        .send()
        .await
        .with_context(|| format!("HQ store is locked and the API at {base} does not answer; is `hq serve` running?"))?;
    let status = resp.status();
    let value: serde_json::Value = resp.json().await.context("sign-in answered with something that is not JSON")?;
    if !status.is_success() {
        bail!("signing in as {login}: {}", value.get("error").and_then(|e| e.as_str()).unwrap_or("refused"));
    }
    Ok(value["token"].as_str().context("sign-in returned no token")?.to_string())
}

/// Calls the admin API of a running HQ (the store is locked while `hq serve` runs),
/// signed in as the local admin.
async fn admin_post(dir: &Path, path: &str, body: serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let config = HqConfig::load(dir)?;
    let base = format!("http://{}", config.http_listen);
    let token = admin_session(dir, &base).await?;
    let url = format!("{base}{path}");
    let resp = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .with_context(|| format!("HQ store is locked and the admin API at {url} does not answer; is `hq serve` running?"))?;
    let status = resp.status();
    let value: serde_json::Value = resp.json().await.context("admin API answered with something that is not JSON")?;
    if !status.is_success() {
        bail!("{}", value.get("error").and_then(|e| e.as_str()).unwrap_or("admin call failed"));
    }
    Ok(value)
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

async fn admin_get_json(dir: &Path, path: &str) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_str(&admin_get_text(dir, path).await?)?)
}

async fn admin_get_text(dir: &Path, path: &str) -> anyhow::Result<String> {
    let config = HqConfig::load(dir)?;
    let base = format!("http://{}", config.http_listen);
    let token = admin_session(dir, &base).await?;
    let url = format!("{base}{path}");
    let resp = reqwest::Client::new()
        .get(&url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("HQ store is locked and the API at {url} does not answer; is `hq serve` running?"))?;
    if !resp.status().is_success() {
        bail!("{url} answered {}", resp.status());
    }
    Ok(resp.text().await?)
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
