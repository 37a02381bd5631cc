//! Store-and-forward: sends the journal to HQ over QUIC whenever a link exists.
//!
//! The decisions (what to send next, what an ack means) are `protocol::sync::BranchSync`;
//! this module only connects, moves frames and sleeps. A reader task turns the receive
//! stream into a channel so the main loop can wait on "HQ said something" and "a
//! document was posted" at once without cancelling a half-read frame.
//!
//! Crash safety: nothing here is needed to recover. The journal is durable before a post
//! returns; the acked mark is advisory (HQ's resume point wins), so after `kill -9` the
//! next session simply resumes where HQ says it stands.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use protocol::batch::BatchBuilder;
use protocol::sync::{BranchEvent, BranchSync, SyncLimits};
use protocol::wire::{frame_len, Message, FRAME_HEADER_BYTES};
use protocol::SigningKey;
use rand::Rng;
use serde::Serialize;
use tokio::sync::{mpsc, Notify};
use tracing::{debug, info, warn};

use crate::config::AgentConfig;
use crate::store::Store;
use crate::tls;

/// How long a connection attempt may take before we call the link down.
pub const CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Messages from HQ buffered between the reader task and the loop.
pub const INBOX_MESSAGES_MAX: usize = 64;

/// What `/api/sync` shows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SyncStatus {
    pub link_up: bool,
    pub head_seq: u64,
    pub acked_seq: u64,
    pub pending: u64,
    pub last_error: Option<String>,
    pub last_error_unix: Option<u64>,
    pub last_ack_unix: Option<u64>,
    pub connects: u64,
    pub batches_sent: u64,
}

pub struct Shared {
    pub store: Arc<Store>,
    pub status: Mutex<SyncStatus>,
    /// Poked after every local post so the forwarder sends without polling.
    pub posted: Notify,
}

fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

impl Shared {
    pub fn status(&self) -> SyncStatus {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
        s.head_seq = self.store.head().seq;
        s.acked_seq = s.acked_seq.max(self.store.acked().unwrap_or(0));
        s.pending = s.head_seq.saturating_sub(s.acked_seq);
        s
    }

    fn update(&self, f: impl FnOnce(&mut SyncStatus)) {
        f(&mut self.status.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

/// Runs forever: connect, sync, back off on failure with exponential delay and jitter.
pub async fn run(shared: Arc<Shared>, config: AgentConfig) {
    let fingerprint = shared.store.identity().hq_fingerprint;
    let endpoint = match tls::client_endpoint(fingerprint) {
        Ok(e) => e,
        Err(e) => {
            shared.update(|s| s.last_error = Some(format!("{e:#}")));
            tracing::error!(error = %format!("{e:#}"), "cannot create QUIC endpoint; forwarding disabled");
            return;
        }
    };
    let min = config.reconnect_delay_ms_min.max(1);
    let max = config.reconnect_delay_ms_max.max(min);
    let mut delay = min;
    loop {
        let mut progressed = false;
        match session(&shared, &endpoint, &config, &mut progressed).await {
            Ok(()) => {}
            Err(e) => {
                let text = format!("{e:#}");
                debug!(error = %text, "sync session ended");
                shared.update(|s| {
                    s.last_error = Some(text);
                    s.last_error_unix = Some(now_unix());
                });
            }
        }
        shared.update(|s| s.link_up = false);
        if progressed {
            delay = min;
        }
        // Full jitter on the upper half: branches that lost HQ together don't return in lockstep.
        let sleep_ms = delay / 2 + rand::thread_rng().gen_range(0..=delay / 2);
        tokio::time::sleep(Duration::from_millis(sleep_ms)).await;
        delay = (delay * 2).min(max);
    }
}

async fn read_message(recv: &mut quinn::RecvStream) -> anyhow::Result<Option<Message>> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    match recv.read_exact(&mut header).await {
        Ok(()) => {}
        Err(quinn::ReadExactError::FinishedEarly(0)) => return Ok(None),
        Err(e) => return Err(e).context("reading from HQ"),
    }
    let len = frame_len(header)?;
    let mut payload = vec![0u8; len];
    recv.read_exact(&mut payload).await.context("reading from HQ")?;
    Ok(Some(Message::from_payload(&payload)?))
}

/// Opens a connection and one stream to HQ.
pub async fn connect(endpoint: &quinn::Endpoint, hq: &str) -> anyhow::Result<(quinn::Connection, quinn::SendStream, quinn::RecvStream)> {
    let addr = tls::resolve(hq).await?;
    let connecting = endpoint.connect(addr, tls::SERVER_NAME).context("starting QUIC connection")?;
    let conn = tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), connecting)
        .await
        .with_context(|| format!("HQ at {hq} did not answer within {CONNECT_TIMEOUT_MS} ms"))?
        .with_context(|| format!("connecting to HQ at {hq}"))?;
    let (send, recv) = conn.open_bi().await.context("opening stream to HQ")?;
    Ok((conn, send, recv))
}

/// Sends and receives until the link fails; sets `progressed` when HQ acknowledges
/// something, so the caller can reset its backoff.
async fn session(shared: &Shared, endpoint: &quinn::Endpoint, config: &AgentConfig, progressed: &mut bool) -> anyhow::Result<()> {
    let store = &shared.store;
    let (conn, mut send, mut recv) = connect(endpoint, &config.hq).await?;
    shared.update(|s| s.connects += 1);
    let limits = SyncLimits {
        batch_entries_max: config.batch_entries_max,
        batch_bytes_max: config.batch_bytes_max,
        inflight_batches_max: config.inflight_batches_max,
    };
    let mut sync = BranchSync::new(store.identity().branch, limits, store.head(), store.acked()?.min(store.head().seq));
    let key = SigningKey::from_bytes(&store.identity().signing_key);
    send.write_all(&sync.connect(store.profile().version, concat!("branch-agent/", env!("CARGO_PKG_VERSION"))).to_frame()).await?;

    let (tx, mut inbox) = mpsc::channel(INBOX_MESSAGES_MAX);
    let reader = tokio::spawn(async move {
        loop {
            let msg = read_message(&mut recv).await;
            let end = !matches!(msg, Ok(Some(_)));
            if tx.send(msg).await.is_err() || end {
                return;
            }
        }
    });
    let _reader_guard = AbortOnDrop(reader);
    loop {
        sync.local_posted(store.head());
        while let Some(plan) = sync.poll_batch() {
            let mut builder = BatchBuilder::new(plan.entries_max, limits.batch_bytes_max);
            let head = sync.head().seq;
            for seq in plan.from..=head {
                if builder.try_push(store.entry_bytes(seq)?).is_err() {
                    break;
                }
            }
            let last = plan.from + builder.len() as u64 - 1;
            let signed = builder.finish(&store.identity().branch, &key);
            send.write_all(&Message::Batch(signed).to_frame()).await.context("sending batch")?;
            sync.batch_sent(plan.from, last);
            shared.update(|s| s.batches_sent += 1);
            debug!(first = plan.from, last, "batch sent");
        }
        tokio::select! {
            msg = inbox.recv() => {
                let msg = match msg {
                    Some(Ok(Some(m))) => m,
                    Some(Ok(None)) | None => bail!("HQ closed the stream"),
                    Some(Err(e)) => return Err(e),
                };
                match sync.handle(msg)? {
                    Some(BranchEvent::Resumed { applied, profile }) => {
                        store.set_acked(applied)?;
                        if let Some(p) = profile {
                            info!(version = p.version, products = p.products.len(), "profile updated from HQ");
                            store.set_profile(*p)?;
                        }
                        shared.update(|s| { s.link_up = true; s.acked_seq = applied; s.last_error = None; });
                        info!(applied, head = sync.head().seq, "connected to HQ");
                    }
                    Some(BranchEvent::Acked { applied }) => {
                        store.set_acked(applied)?;
                        *progressed = true;
                        shared.update(|s| { s.acked_seq = applied; s.last_ack_unix = Some(now_unix()); });
                    }
                    Some(BranchEvent::Profile(p)) => {
                        info!(version = p.version, products = p.products.len(), "profile pushed by HQ");
                        store.set_profile(*p)?;
                    }
                    Some(BranchEvent::Resend { from }) => {
                        warn!(from, "HQ asked for a resend");
                        store.set_acked(from - 1)?;
                    }
                    None => {}
                }
            }
            _ = shared.posted.notified() => {}
            reason = conn.closed() => bail!("link to HQ lost: {reason}"),
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);
impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `branch-agent enroll`: make a key, redeem the token at HQ, store identity and profile.
pub async fn enroll(
    hq: &str,
    token: &str,
    dir: &std::path::Path,
    http_listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<protocol::profile::BranchProfile> {
    let tok = protocol::token::EnrollToken::parse(token).map_err(anyhow::Error::msg)?;
    let store_path = dir.join("store");
    if store_path.exists() {
        bail!("{} already holds a branch store; enroll into a new, empty --data-dir", dir.display());
    }
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let endpoint = tls::client_endpoint(tok.hq_cert_fingerprint)?;
    let (conn, mut send, mut recv) = connect(&endpoint, hq).await?;
    send.write_all(&Message::Enroll { token: token.trim().to_string(), branch_key: key.verifying_key().to_bytes() }.to_frame()).await?;
    let reply = tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), read_message(&mut recv))
        .await
        .context("HQ did not answer the enrollment")??;
    conn.close(0u32.into(), b"enrolled");
    let profile = match reply {
        Some(Message::Enrolled { profile }) => profile,
        Some(Message::Reject { text, .. }) => bail!("HQ refused the enrollment: {text}"),
        other => bail!("unexpected answer from HQ: {other:?}"),
    };
    if profile.branch != tok.branch {
        bail!("HQ enrolled us as {} but the token names {}", profile.branch, tok.branch);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let identity = crate::store::Identity { branch: tok.branch, signing_key: key.to_bytes(), hq_fingerprint: tok.hq_cert_fingerprint };
    Store::create(&store_path, &identity, &profile)?;
    let mut cfg = AgentConfig { hq: hq.to_string(), ..AgentConfig::default() };
    if let Some(a) = http_listen {
        cfg.http_listen = a;
    }
    cfg.save(dir)?;
    endpoint.wait_idle().await;
    Ok(profile)
}
