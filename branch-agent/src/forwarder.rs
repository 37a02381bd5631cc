//! Store-and-forward: sends the journal to HQ over QUIC whenever a link exists.
//!
//! The decisions (what to send next, what an ack means, when to reconnect and with what
//! jitter, when a link that carries nothing has stalled) are
//! `protocol::sync::BranchSync`'s; this module only connects, moves frames in and out,
//! and moves time in (`now_ms` from a monotonic clock) and out (sleeping until the
//! machine's `poll_timeout`). Framing and the reader task come from the `edge` crate,
//! shared with HQ.
//!
//! A halt (HQ's history and the journal disagree: a branch restored from an old copy, or a
//! fork) is stored by the store and ends forwarding: nothing more is sent, posting is
//! refused, and the agent waits for a rebuild (also after a restart).
//!
//! Crash safety: nothing here is needed to recover. The journal is durable before a post
//! returns; the acked mark is advisory (HQ's resume point wins), so after `kill -9` the
//! next session simply resumes where HQ says it stands.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context};
use edge::{now_unix, write_message, FrameReader, MonotonicClock};
use protocol::batch::BatchBuilder;
use protocol::sync::{BranchEvent, BranchSync, BranchTimeout, SyncLimits, SyncTimers};
use protocol::wire::Message;
use protocol::SigningKey;
use serde::Serialize;
use tokio::sync::Notify;
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
    /// When HQ last confirmed the journal (a resume or an ack).
    pub last_sync_unix: Option<u64>,
    pub connects: u64,
    pub batches_sent: u64,
}

pub struct Shared {
    pub store: Arc<Store>,
    /// The down channel's receiver (notices, HQ's orders).
    pub down: crate::down::Down,
    pub status: Mutex<SyncStatus>,
    /// Poked after every local post (and new draft) so the forwarder sends without polling.
    pub posted: Notify,
    /// Drafts awaiting HQ's approval; the forwarder sends those HQ has not acked.
    pub drafts: crate::drafts::Drafts,
    /// What `/metrics` serves.
    pub metrics: crate::metrics::BranchMetrics,
}

impl Shared {
    pub fn status(&self) -> SyncStatus {
        let mut s = edge::lock(&self.status).clone();
        s.head_seq = self.store.head().seq;
        s.acked_seq = s.acked_seq.max(self.store.acked().unwrap_or(0));
        s.pending = s.head_seq.saturating_sub(s.acked_seq);
        s
    }

    fn update(&self, f: impl FnOnce(&mut SyncStatus)) {
        f(&mut edge::lock(&self.status));
    }
}

/// Runs forever: connect, sync, and on failure wait as long as `BranchSync` says
/// (exponential backoff with jitter, reset by progress).
pub async fn run(shared: Arc<Shared>, config: AgentConfig) {
    let fingerprint = shared.store.identity().hq_fingerprint;
    let key = SigningKey::from_bytes(&shared.store.identity().signing_key);
    // The enrolled key, proven in every handshake: HQ lets our hello through for it only.
    let endpoint = match tls::client_endpoint(fingerprint, &key) {
        Ok(e) => e,
        Err(e) => {
            shared.update(|s| s.last_error = Some(format!("{e:#}")));
            tracing::error!(error = %format!("{e:#}"), "cannot create QUIC endpoint; forwarding disabled");
            return;
        }
    };
    let store = &shared.store;
    let limits = SyncLimits {
        batch_entries_max: config.batch_entries_max,
        batch_bytes_max: config.batch_bytes_max,
        inflight_batches_max: config.inflight_batches_max,
    };
    // Clamped as before: a zero or inverted range in agent.toml must not stop forwarding.
    let delay_min = config.reconnect_delay_ms_min.max(1);
    let timers = SyncTimers {
        reconnect_delay_ms_min: delay_min,
        reconnect_delay_ms_max: config.reconnect_delay_ms_max.max(delay_min),
        ..SyncTimers::default()
    };
    // The acked mark is advisory (HQ's resume point wins): an unreadable one means
    // "resend from the start of what HQ lacks", not "stop".
    let acked = store.acked().unwrap_or_else(|e| {
        warn!(error = %format!("{e:#}"), "cannot read the acked mark; HQ's resume point will say");
        0
    });
    if let Some(why) = store.halted_by_hq() {
        shared.update(|s| s.last_error = Some(format!("posting is stopped: {why}")));
        warn!(reason = %why, "this branch's history disagrees with HQ's; not forwarding until it is rebuilt");
        return wait_for_rebuild().await;
    }
    let mut sync = BranchSync::new(store.identity().branch, limits, timers, store.head(), acked.min(store.head().seq), rand::random());
    sync.set_down_applied(shared.down.applied_seq());
    // The branch's business date in its configured zone (agent.toml `business_zone`).
    let store_for_today = store.clone();
    let today = move || store_for_today.today().0;
    retry_orders(&shared, today());
    let key = SigningKey::from_bytes(&store.identity().signing_key);
    let clock = MonotonicClock::start();
    loop {
        // Disconnected: the machine always has a reconnect time (at once, the first time).
        if let Some(at_ms) = sync.poll_timeout() {
            tokio::time::sleep_until(clock.instant(at_ms)).await;
        }
        let _reconnect_due = sync.handle_timeout(clock.now_ms());
        if let Err(e) = session(&shared, &endpoint, &config, &mut sync, &key, &clock, &today).await {
            let text = format!("{e:#}");
            // Loud: the link is down, HQ refused us, or our history forked from HQ's. The
            // backoff (reconnect_delay_ms_max) bounds how often this is said.
            warn!(error = %text, "sync with HQ failed");
            shared.update(|s| {
                s.last_error = Some(text);
                s.last_error_unix = Some(now_unix());
            });
        }
        shared.update(|s| s.link_up = false);
        if sync.halted().is_some() {
            // Stored by the session; nothing more to send until a rebuild.
            return wait_for_rebuild().await;
        }
        sync.disconnected(clock.now_ms());
    }
}

/// A halted branch forwards nothing, but the agent keeps serving (reads, the status page
/// saying why) until it is rebuilt: the forwarder must not end, or the process would.
async fn wait_for_rebuild() {
    std::future::pending::<()>().await
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

/// Sends and receives until the link fails or `sync` declares it stalled.
async fn session(
    shared: &Shared,
    endpoint: &quinn::Endpoint,
    config: &AgentConfig,
    sync: &mut BranchSync,
    key: &SigningKey,
    clock: &MonotonicClock,
    today: &(dyn Fn() -> protocol::date::BusinessDate + Sync),
) -> anyhow::Result<()> {
    let store = &shared.store;
    sync.local_posted(store.head());
    // The hello is made before the attempt, so a failed attempt backs off like a lost link.
    let hello = sync.connect(clock.now_ms(), store.profile().version, concat!("branch-agent/", env!("CARGO_PKG_VERSION")));
    let (conn, mut send, recv) = connect(endpoint, &config.hq).await?;
    shared.update(|s| s.connects += 1);
    write_message(&mut send, &hello).await.context("saying hello to HQ")?;
    let mut inbox = edge::spawn_reader(recv, INBOX_MESSAGES_MAX);
    let batch_bytes_max = sync.limits().batch_bytes_max;
    // Drafts sent on this connection: each unacked draft goes once per connection (HQ
    // keeps one per id, so a resend on the next connection is harmless).
    let mut drafts_sent = std::collections::BTreeSet::new();
    // Looked for after the resume and after each local post or new draft, not per message.
    let mut drafts_due = true;
    loop {
        sync.local_posted(store.head());
        if drafts_due && *sync.state() == protocol::sync::BranchState::Streaming {
            drafts_due = false;
            let unacked = tokio::task::block_in_place(|| shared.drafts.unacked(store))?;
            for (id, bytes) in unacked {
                if drafts_sent.insert(id) {
                    write_message(&mut send, &Message::Draft(bytes)).await.context("sending a draft")?;
                    debug!(draft = id, "draft sent for approval");
                }
            }
        }
        while let Some(plan) = sync.poll_batch() {
            let mut builder = BatchBuilder::new(plan.entries_max, batch_bytes_max);
            let head = sync.head().seq;
            for seq in plan.from..=head {
                if builder.try_push(store.entry_bytes(seq)?).is_err() {
                    break;
                }
            }
            let last = plan.from + builder.len() as u64 - 1;
            let signed = builder.finish(&store.identity().branch, key);
            write_message(&mut send, &Message::Batch(signed)).await.context("sending batch")?;
            sync.batch_sent(clock.now_ms(), plan.from, last);
            shared.update(|s| s.batches_sent += 1);
            debug!(first = plan.from, last, "batch sent");
        }
        let deadline_ms = sync.poll_timeout();
        tokio::select! {
            msg = inbox.recv() => {
                let Some(msg) = msg.context("reading from HQ")? else { bail!("HQ closed the stream") };
                // A resume below our head is checked against our own entry there.
                let own = match sync.own_needed(&msg) {
                    Some(seq) => store.entry_bytes(seq).ok().map(|b| protocol::journal::EntryHash::of(&b)),
                    None => None,
                };
                match sync.handle(clock.now_ms(), msg, own)? {
                    Some(BranchEvent::Halted(why)) => {
                        let text = why.to_string();
                        store.halt(&text)?;
                        shared.update(|s| { s.last_error = Some(format!("posting is stopped: {text}")); s.last_error_unix = Some(now_unix()); });
                        bail!("posting is stopped: {text}");
                    }
                    Some(BranchEvent::Resumed { applied, profile }) => {
                        store.set_acked(applied)?;
                        if let Some(p) = profile {
                            info!(version = p.version, products = p.products.len(), "profile updated from HQ");
                            store.set_profile(*p)?;
                        }
                        shared.update(|s| { s.link_up = true; s.acked_seq = applied; s.last_error = None; s.last_sync_unix = Some(now_unix()); });
                        info!(applied, head = sync.head().seq, "connected to HQ");
                    }
                    Some(BranchEvent::Acked { applied }) => {
                        store.set_acked(applied)?;
                        shared.update(|s| { s.acked_seq = applied; s.last_ack_unix = Some(now_unix()); s.last_sync_unix = s.last_ack_unix; });
                    }
                    Some(BranchEvent::Profile(p)) => {
                        info!(version = p.version, products = p.products.len(), "profile pushed by HQ");
                        store.set_profile(*p)?;
                    }
                    Some(BranchEvent::Down(bytes)) => {
                        let received = tokio::task::block_in_place(|| shared.down.receive(store, &bytes));
                        match received {
                            Ok(crate::down::Received::Applied { seq }) => {
                                shared.metrics.down_applied.inc();
                                write_message(&mut send, &sync.down_applied(seq)).await.context("acking a down message")?;
                                if tokio::task::block_in_place(|| shared.down.retry_orders(store, today()))? > 0 {
                                    shared.posted.notify_one();
                                }
                            }
                            Ok(crate::down::Received::Replayed { applied }) => {
                                write_message(&mut send, &sync.down_applied(applied)).await.context("acking a down message")?;
                            }
                            Err(e) => {
                                let text = format!("down message refused: {e:#}");
                                warn!(reason = %text, "refused a message from HQ");
                                shared.update(|s| { s.last_error = Some(text); s.last_error_unix = Some(now_unix()); });
                            }
                        }
                    }
                    Some(BranchEvent::DraftAcked { id }) => {
                        tokio::task::block_in_place(|| shared.drafts.acked(store, id))?;
                        debug!(draft = id, "HQ holds the draft");
                    }
                    Some(BranchEvent::Resend { from }) => {
                        warn!(from, "HQ asked for a resend");
                        store.set_acked(from - 1)?;
                    }
                    None => {}
                }
            }
            _ = shared.posted.notified() => {
                drafts_due = true;
                retry_orders(shared, today());
            }
            _ = sleep_until_ms(clock, deadline_ms) => {
                if let Some(BranchTimeout::Stalled { waited_ms, inflight }) = sync.handle_timeout(clock.now_ms()) {
                    bail!("HQ made no progress for {waited_ms} ms with {inflight} batches unacknowledged: reconnecting");
                }
            }
            reason = conn.closed() => bail!("link to HQ lost: {reason}"),
        }
    }
}

/// Posts the reversals HQ ordered that can post now (after each local post: the stock a
/// reversal needs may have come back). Failures are kept as blockers and logged.
fn retry_orders(shared: &Shared, date: protocol::date::BusinessDate) {
    match tokio::task::block_in_place(|| shared.down.retry_orders(&shared.store, date)) {
        Ok(0) => {}
        Ok(n) => info!(reversals = n, "posted reversals ordered by HQ"),
        Err(e) => warn!(error = %format!("{e:#}"), "retrying HQ's reversal orders"),
    }
}

/// Sleeps until `at_ms` on `clock`, or forever if there is no deadline.
async fn sleep_until_ms(clock: &MonotonicClock, at_ms: Option<u64>) {
    match at_ms {
        Some(at_ms) => tokio::time::sleep_until(clock.instant(at_ms)).await,
        None => std::future::pending().await,
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
    let endpoint = tls::client_endpoint(tok.hq_cert_fingerprint, &key)?;
    let (conn, mut send, recv) = connect(&endpoint, hq).await?;
    write_message(&mut send, &Message::Enroll { token: token.trim().to_string(), branch_key: key.verifying_key().to_bytes() }).await?;
    let mut reader = FrameReader::new(recv);
    let reply = tokio::time::timeout(Duration::from_millis(CONNECT_TIMEOUT_MS), reader.read_message())
        .await
        .context("HQ did not answer the enrollment")?
        .context("reading from HQ")?;
    conn.close(0u32.into(), b"enrolled");
    let (profile, hq_down_key) = match reply {
        Some(Message::Enrolled { profile, hq_down_key }) => (profile, hq_down_key),
        Some(Message::Reject { text, .. }) => bail!("HQ refused the enrollment: {text}"),
        other => bail!("unexpected answer from HQ: {other:?}"),
    };
    if profile.branch != tok.branch {
        bail!("HQ enrolled us as {} but the token names {}", profile.branch, tok.branch);
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let identity = crate::store::Identity { branch: tok.branch, signing_key: key.to_bytes(), hq_fingerprint: tok.hq_cert_fingerprint };
    Store::create(&store_path, &identity, &profile)?;
    crate::down::store_hq_key(&store_path, hq_down_key)?;
    let mut cfg = AgentConfig { hq: hq.to_string(), ..AgentConfig::default() };
    if let Some(a) = http_listen {
        cfg.http_listen = a;
    }
    cfg.save(dir)?;
    endpoint.wait_idle().await;
    Ok(profile)
}
