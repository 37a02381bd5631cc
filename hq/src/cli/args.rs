//! The `hq` command line: every subcommand and its arguments, as clap parses them.
//! Parsing only; what each command does is in `main.rs`, and the calls to a running
//! HQ's API are in `remote.rs`.
//!
//! Must not: run anything.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
pub(crate) struct Cli {
    /// Directory holding HQ's identity, config (hq.toml) and store.
    #[arg(long, global = true, env = "BRANCHLINE_HQ_DIR", default_value = "./hq-data")]
    pub(crate) data_dir: PathBuf,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    pub(crate) log_json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
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
    /// Approvals (审批): which documents need HQ's approval, the drafts branches sent,
    /// and an auditor's decision on one.
    #[command(subcommand)]
    Approval(ApprovalCmd),
    /// Cross-branch transfers (调拨): an auditor orders goods from one branch's warehouse
    /// to another's, lists the board, settles a discrepancy. Needs `hq serve`.
    #[command(subcommand)]
    Transfer(TransferCmd),
    /// Branches' cash and bank accounts: how far below zero each may go.
    #[command(subcommand)]
    Account(AccountCmd),
    /// Export the books for auditors' own tools (through the API when `hq serve` runs).
    #[command(subcommand)]
    Export(ExportCmd),
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
pub(crate) enum BranchCmd {
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
pub(crate) enum ProductCmd {
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
pub(crate) enum CustomerCmd {
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
pub(crate) enum UserCmd {
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

#[derive(Subcommand)]
pub(crate) enum SupplierCmd {
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
pub(crate) struct PartyFields {
    #[arg(long)]
    pub(crate) name: String,
    /// Category code (customer or supplier class), e.g. 2001.
    #[arg(long)]
    pub(crate) category: Option<String>,
    #[arg(long, default_value = "")]
    pub(crate) region: String,
    /// Change an existing record instead of adding a new one.
    #[arg(long)]
    pub(crate) replace: bool,
}

#[derive(Subcommand)]
pub(crate) enum ScopeCmd {
    /// Replace a branch's scope: `hq scope set SH 'warehouses=SH01; categories=01; customers=200*; suppliers=*; employees=*; accounts=*; expenses=*; incomes=*'`.
    /// Patterns: a code, `prefix*`, `lo..hi` or `*`; a kind left out allows nothing.
    Set { branch: String, scope: String },
    /// Print a branch's scope (every kind).
    Show { branch: String },
}

impl PartyFields {
    pub(crate) fn to_party(
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

#[derive(Subcommand)]
pub(crate) enum ApprovalCmd {
    /// Set which documents need approval (a new profile version for every branch); flags
    /// left out need none: `hq approval rules --stock-loss-above 500 --gifts`.
    Rules {
        #[arg(long)]
        gifts: bool,
        #[arg(long)]
        stock_loss_above: Option<protocol::Decimal>,
        #[arg(long)]
        below_cost: bool,
        #[arg(long)]
        over_credit_limit: bool,
    },
    /// List the drafts branches sent for approval, with their state.
    List,
    /// Approve a draft, signed in as LOGIN (an HQ auditor; password on stdin). Needs `hq serve`.
    Approve {
        branch: String,
        id: u64,
        #[arg(long)]
        login: String,
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Refuse a draft, signed in as LOGIN (an HQ auditor; password on stdin). Needs `hq serve`.
    Refuse {
        branch: String,
        id: u64,
        #[arg(long)]
        login: String,
        #[arg(long, default_value = "")]
        note: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum AccountCmd {
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
pub(crate) enum TransferCmd {
    /// Order goods from one branch's warehouse to another's, signed in as LOGIN (an HQ
    /// auditor; password on stdin):
    /// `hq transfer order --from SH01 --to HB01 --line 6901234567892:100 --login audit1`.
    /// With `--price`, each line is `PRODUCT:QTY@PRICE` and the transfer is at that price.
    Order {
        /// The shipper's goods warehouse.
        #[arg(long)]
        from: String,
        /// The receiver's goods warehouse.
        #[arg(long)]
        to: String,
        /// `PRODUCT:QTY`, or `PRODUCT:QTY@PRICE` with --price; repeat for more lines.
        #[arg(long = "line", required = true)]
        lines: Vec<String>,
        /// At a transfer price (变价) instead of at cost (同价).
        #[arg(long)]
        price: bool,
        /// Expected arrival, YYYY-MM-DD.
        #[arg(long)]
        expected: Option<String>,
        #[arg(long, default_value = "")]
        memo: String,
        #[arg(long)]
        login: String,
    },
    /// The transfers board: every order with its state and what is in transit.
    List {
        #[arg(long)]
        login: String,
    },
    /// Settle what is open on an order: loss-at-shipper, loss-at-receiver, carrier-claim
    /// (a shortfall) or gain-at-receiver (an excess).
    Settle {
        order: u64,
        #[arg(long = "as")]
        settle: String,
        #[arg(long)]
        why: String,
        #[arg(long)]
        login: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum ExportCmd {
    /// The books as a plain-text accounting journal (beancount or hledger): account
    /// opens, the balances brought forward, one transaction per posted document of the
    /// months `--from..=--to` with its number as link, in CNY.
    /// `hq export ledger --branch SH --from 2026-06 --to 2026-06 --format hledger --out sh.journal`
    Ledger {
        /// One branch; every branch (their books summed, nothing eliminated) without it.
        #[arg(long)]
        branch: Option<String>,
        /// First month, YYYY-MM.
        #[arg(long)]
        from: String,
        /// Last month, YYYY-MM (default: `--from`).
        #[arg(long)]
        to: Option<String>,
        /// beancount or hledger.
        #[arg(long, default_value = "beancount")]
        format: String,
        /// Write to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}
