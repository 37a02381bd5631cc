//! `udp-relay`: run the simulated patchy link by hand, e.g. between a branch agent and HQ
//! for a demo over a bad link. A thin shell over `harness::relay::Relay`; all behaviour
//! lives there.
//!
//! Must not: hold relay behaviour of its own.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use harness::relay::{LinkConfig, Relay};
use tracing_subscriber::EnvFilter;

/// Bytes per second in one kilobit per second (1 kbit = 1000 bit).
const BYTES_PER_SEC_PER_KBPS: u64 = 125;

/// Forward UDP datagrams between clients and an upstream server over a simulated bad link.
///
/// Point the client (branch agent) at --listen and the relay forwards to --upstream (HQ),
/// applying loss, delay, jitter, reordering, duplication and a bandwidth cap independently
/// in each direction. Every client address gets its own upstream socket, so several
/// branches can share one relay. Counters are logged every --stats-secs seconds.
///
/// Every random decision derives from --seed: rerun with the seed printed at start-up to
/// replay the same link behaviour (given the same traffic). Log detail: RUST_LOG=debug.
///
/// Example: udp-relay --listen 127.0.0.1:7000 --upstream 127.0.0.1:7443 --loss 0.1
/// --delay-ms 50 --jitter-ms 20 --duplicate 0.01 --reorder 0.05 --bandwidth-kbps 256 --seed 42
#[derive(Parser, Debug)]
#[command(name = "udp-relay", version)]
struct Args {
    /// Address clients send to (give this to the branch agent as its HQ address).
    #[arg(long, default_value = "127.0.0.1:7000")]
    listen: SocketAddr,

    /// Address the datagrams are forwarded to (the real HQ QUIC endpoint).
    #[arg(long)]
    upstream: SocketAddr,

    /// Probability (0.0-1.0) that a datagram is lost, per datagram and direction.
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    loss: f64,

    /// Fixed one-way delay in milliseconds (a round trip pays it twice).
    #[arg(long, default_value_t = 0)]
    delay_ms: u64,

    /// Extra one-way delay drawn uniformly from 0..=N ms per datagram. Datagrams closer
    /// together than the spread overtake each other, so this also reorders.
    #[arg(long, default_value_t = 0)]
    jitter_ms: u64,

    /// Probability (0.0-1.0) that a datagram is held back and delivered right after the
    /// next one in the same direction.
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    reorder: f64,

    /// Probability (0.0-1.0) that a datagram is delivered twice.
    #[arg(long, default_value_t = 0.0, value_parser = parse_probability)]
    duplicate: f64,

    /// Link rate in kilobits per second, per client and direction (IP/UDP headers count).
    /// Bursts wait in a router queue of --queue-bytes; what does not fit is dropped.
    /// Unlimited when absent.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    bandwidth_kbps: Option<u64>,

    /// Router queue in front of the bandwidth cap, in bytes. Only used with --bandwidth-kbps.
    #[arg(long, default_value_t = LinkConfig::default().queue_bytes_max)]
    queue_bytes: usize,

    /// Seed for every random decision. A random one is picked (and logged) when absent.
    #[arg(long)]
    seed: Option<u64>,

    /// Seconds between stats log lines.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    stats_secs: u64,
}

fn parse_probability(text: &str) -> Result<f64, String> {
    let p: f64 = text.parse().map_err(|e| format!("not a number: {e}"))?;
    if (0.0..=1.0).contains(&p) {
        Ok(p)
    } else {
        Err(format!("{p} is not a probability between 0.0 and 1.0"))
    }
}

impl Args {
    fn link_config(&self) -> anyhow::Result<LinkConfig> {
        let bandwidth_bytes_per_sec = match self.bandwidth_kbps {
            Some(kbps) => Some(kbps.checked_mul(BYTES_PER_SEC_PER_KBPS).context("--bandwidth-kbps is too large")?),
            None => None,
        };
        Ok(LinkConfig {
            loss: self.loss,
            delay_ms: self.delay_ms,
            jitter_ms: self.jitter_ms,
            reorder: self.reorder,
            duplicate: self.duplicate,
            bandwidth_bytes_per_sec,
            queue_bytes_max: self.queue_bytes,
            outage: false,
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))).init();
    let args = Args::parse();
    let config = args.link_config()?;
    let seed = args.seed.unwrap_or_else(rand::random);
    let relay = Relay::start_on(args.listen, args.upstream, config, seed).await.context("starting relay")?;
    tracing::info!(
        listen = %relay.addr(),
        upstream = %relay.upstream(),
        seed,
        "relaying; replay with --seed {seed}; Ctrl-C to stop"
    );

    let mut ticker = tokio::time::interval(Duration::from_secs(args.stats_secs));
    ticker.tick().await; // the first tick is immediate; nothing to report yet
    loop {
        tokio::select! {
            signal = tokio::signal::ctrl_c() => {
                signal.context("waiting for Ctrl-C")?;
                break;
            }
            _ = ticker.tick() => log_stats(&relay),
        }
    }
    log_stats(&relay);
    Ok(())
}

fn log_stats(relay: &Relay) {
    let stats = relay.stats();
    tracing::info!(
        clients = stats.clients_seen,
        clients_rejected = stats.clients_rejected,
        to_upstream = ?stats.to_upstream,
        to_client = ?stats.to_client,
        "link stats"
    );
}
