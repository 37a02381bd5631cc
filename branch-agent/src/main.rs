//! `branch-agent`: a branch of Branchline. See `branch-agent --help`.
//!
//! What each command does, and the wiring of store, forwarder, till and HTTP. Must not hold
//! a rule of its own: those live in the modules it starts and in `protocol`.

mod auth;
mod config;
mod down;
mod drafts;
mod forwarder;
mod http;
mod metrics;
mod ops;
mod routes;
mod shift;
mod store;
mod till;
mod tls;
mod transfers;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::sync::Notify;
use tracing::info;

/// Branchline branch agent: posts documents locally (fully offline), keeps them in a
/// durable journal, and forwards them to HQ as signed batches over QUIC whenever a link
/// exists.
///
/// First run on a new store:
///   branch-agent enroll --hq hq.example.com:7443 --token BL1.SH.... --data-dir /var/lib/branchline
///   branch-agent run --data-dir /var/lib/branchline
/// Then post documents to http://127.0.0.1:8181/api/documents, or sell at the till on
/// http://127.0.0.1:8181/pos (see README).
#[derive(Parser)]
#[command(name = "branch-agent", version, about, long_about = None, verbatim_doc_comment)]
struct Cli {
    /// Directory holding this branch's store and agent.toml.
    #[arg(long, global = true, env = "BRANCHLINE_AGENT_DIR", default_value = "./branch-data")]
    data_dir: PathBuf,
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Register this branch with HQ using a one-time token from `hq branch add`: creates
    /// the branch's signing key and pins HQ's certificate.
    Enroll {
        /// HQ's QUIC address, HOST:PORT.
        #[arg(long)]
        hq: String,
        /// The one-time token printed by `hq branch add` (BL1.<BRANCH>....).
        #[arg(long)]
        token: String,
        /// Local API address to write into agent.toml (default 127.0.0.1:8181).
        #[arg(long)]
        http_listen: Option<std::net::SocketAddr>,
    },
    /// Serve the local API and forward the journal to HQ.
    Run {
        /// Override http_listen from agent.toml.
        #[arg(long)]
        http_listen: Option<std::net::SocketAddr>,
        /// Override the HQ address from agent.toml.
        #[arg(long)]
        hq: Option<String>,
    },
    /// Print the HTTP route table: method, path, and the right each route needs.
    #[command(hide = true)]
    Routes,
    /// Write a receipt's ESC/POS bytes to a file (no data directory needed), e.g. to
    /// check a new printer: `branch-agent receipt --sample --out /dev/usb/lp0`.
    Receipt {
        /// The built-in sample receipt (Chinese and ASCII text, a weighed item, QR, cut,
        /// drawer kick). Posted sales are reprinted with POST /api/pos/reprint/{seq}.
        #[arg(long)]
        sample: bool,
        /// Where to write the bytes: a file, or a printer's device node.
        #[arg(long)]
        out: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    edge::stop_on_panic();
    edge::init_tracing(cli.log_json);
    let dir = cli.data_dir;
    match cli.command {
        Command::Enroll { hq, token, http_listen } => {
            let profile = forwarder::enroll(&hq, &token, &dir, http_listen).await?;
            println!("enrolled as branch {} ({}) with HQ at {hq}", profile.branch, profile.name);
            println!("warehouses: {}; products in catalog: {}", profile.warehouses_text(), profile.products.len());
            println!("next: branch-agent run --data-dir {}", dir.display());
        }
        Command::Routes => print!("{}", routes::describe()),
        Command::Receipt { sample, out } => {
            anyhow::ensure!(sample, "only --sample is supported here; reprint a posted sale with POST /api/pos/reprint/{{seq}}");
            let bytes = devices::sample_receipt();
            std::fs::write(&out, &bytes).with_context(|| format!("writing the sample receipt to {}", out.display()))?;
            println!("wrote a sample receipt ({} bytes of ESC/POS) to {}", bytes.len(), out.display());
        }
        Command::Run { http_listen, hq } => {
            let mut config = config::AgentConfig::load(&dir)?;
            if let Some(a) = http_listen {
                config.http_listen = a;
            }
            if let Some(h) = hq {
                config.hq = h;
            }
            let store = Arc::new(store::Store::open(&dir.join("store")).context("opening the branch store")?);
            store.set_dates(store::Dates { zone: config.business_zone.clone(), ahead_days_max: config.ahead_days_max });
            let shared = Arc::new(forwarder::Shared {
                down: down::Down::open(&store).context("opening the down channel")?,
                store: store.clone(),
                status: Mutex::new(Default::default()),
                posted: Notify::new(),
                drafts: drafts::Drafts::default(),
                metrics: metrics::BranchMetrics::new(store.posted_counter(), config.metrics_token.clone()),
            });
            let listener = tokio::net::TcpListener::bind(config.http_listen)
                .await
                .with_context(|| format!("binding local API on {}", config.http_listen))?;
            let addr = listener.local_addr()?;
            println!("http-listening http://{addr}");
            info!(branch = %store.identity().branch, head = store.head().seq, %addr, hq = %config.hq, "branch agent running");
            let pos = till::Pos::start(shared.clone(), &config).await.context("starting the till")?;
            let fwd = tokio::spawn(forwarder::run(shared.clone(), config));
            let session_key = edge::session::load_or_create_session_key(&dir).context("reading or creating the session key")?;
            let app = routes::build(auth::AgentWeb { shared, pos, session_key: Arc::new(session_key) });
            let web = tokio::spawn(async move { axum::serve(listener, app).await });
            tokio::select! {
                _ = tokio::signal::ctrl_c() => info!("stopping"),
                r = fwd => anyhow::bail!("forwarder ended: {r:?}"),
                r = web => anyhow::bail!("local API ended: {r:?}"),
            }
        }
    }
    Ok(())
}
