//! The running HQ: shared state, and the QUIC listener that feeds branch sessions.
//!
//! Each branch connection opens one bidirectional stream and speaks framed
//! `protocol::wire::Message`s, read and written through the `edge` crate shared with the
//! branch agent. This module only moves bytes: decisions come from
//! `protocol::sync::HqSession`, durable changes from `store`. A session's step (decide +
//! apply + flush) runs on a blocking thread under its branch's writer lock, so one
//! branch's batches apply one at a time while different branches' batches are posted and
//! staged in parallel and share their fsyncs (group commit); an ack is only ever sent
//! after the flush that made its batch durable. The state lock is held only for short,
//! fsync-free stretches on the apply path.
//!
//! The door: a branch proves its enrolled key in the TLS handshake (a client certificate
//! bound to that key, see `door`); a peer without one may only enroll. Its hello is
//! refused before any branch data is sent, and costs no disk write, only a counter and a
//! rate-limited log line. Connections, streams, windows and the bytes buffered across
//! all connections are bounded (`hq.toml`).
//!
//! Must not: decide what a message means (that is `HqSession`) or write to sled itself
//! (that is `store`).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use edge::{write_message, FrameError};
use protocol::codes::BranchCode;
use protocol::sync::{HqSession, HqStep};
use protocol::token::EnrollToken;
use protocol::wire::{Message, RejectCode, ALPN};
use quinn::crypto::rustls::QuicServerConfig;
use tracing::{debug, info, warn};

use crate::config::HqConfig;
use crate::door::{self, Peer};
use crate::identity::Identity;
use crate::store::{BranchBooks, Ctx, Rejection, State, Store};
use protocol::books::Books;

/// Wall-clock seconds, from the edge crate both binaries share (re-exported so the rest
/// of HQ keeps one import path).
pub use edge::now_unix;

pub struct Hq {
    pub store: Store,
    state: Mutex<State>,
    pub config: HqConfig,
    pub fingerprint: [u8; 32],
    /// The current profile version; connected branch sessions watch it and push the new
    /// profile (catalog, scope, credit limits) as soon as HQ changes it.
    profile_version: tokio::sync::watch::Sender<u64>,
    /// Live connections by the branch whose key they proved, so a revocation can close them.
    live: Mutex<Vec<(BranchCode, usize, quinn::Connection)>>,
    /// Hellos refused because the peer proved no enrolled key; never written to disk.
    pub refused_unknown: AtomicU64,
    /// Connections refused because `max_connections` were open.
    pub refused_busy: AtomicU64,
    /// When the last door log line was written (unix seconds), for its rate limit.
    door_logged_unix: AtomicU64,
    /// Bytes of frames read but not handled, across all connections.
    budget: edge::ByteBudget,
    connections: Arc<tokio::sync::Semaphore>,
    /// Bumped when a down message is enqueued; sessions send what their branch lacks.
    down_enqueued: tokio::sync::watch::Sender<u64>,
    /// What `/metrics` serves (`crate::metrics`).
    pub metrics: crate::metrics::HqMetrics,
}

impl Hq {
    pub fn new(store: Store, state: State, config: HqConfig, fingerprint: [u8; 32]) -> Hq {
        let (profile_version, _) = tokio::sync::watch::channel(state.profile_version);
        let budget = edge::ByteBudget::new(usize::try_from(config.buffered_bytes_max).unwrap_or(usize::MAX));
        let connections = Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1) as usize));
        let (down_enqueued, _) = tokio::sync::watch::channel(0);
        Hq {
            store,
            state: Mutex::new(state),
            config,
            fingerprint,
            profile_version,
            live: Mutex::new(Vec::new()),
            refused_unknown: AtomicU64::new(0),
            refused_busy: AtomicU64::new(0),
            door_logged_unix: AtomicU64::new(0),
            budget,
            connections,
            down_enqueued,
            metrics: crate::metrics::HqMetrics::new(),
        }
    }

    /// Revokes `code`'s key durably, then closes its live connections: from now on it is
    /// refused until it enrolls a new key with a new token. Returns whether it had a key.
    pub fn revoke_branch(&self, code: &BranchCode, reason: &str) -> Result<bool, crate::store::StoreError> {
        let revoked = {
            let mut st = self.state();
            self.store.revoke_branch_key(&mut st, code, reason, now_unix())?
        };
        if let Some(k) = revoked {
            warn!(branch = %code, key = %protocol::hex::encode(&k), %reason, "branch key revoked");
            self.close_branch(code, "key revoked at HQ");
        }
        Ok(revoked.is_some())
    }

    /// Issues a new enrollment token for `code` (revoking its enrolled key, logged) and
    /// closes the connections of the old key. Returns the token text.
    pub fn reissue_token(&self, code: &BranchCode) -> Result<String, crate::store::StoreError> {
        let (secret, revoked) = {
            let mut st = self.state();
            self.store.new_token(&mut st, code, now_unix(), self.config.token_ttl_hours * 3600)?
        };
        if revoked.is_some() {
            self.close_branch(code, "key revoked at HQ: a new enrollment token was issued");
        }
        Ok(self.token_text(code, secret))
    }

    /// Closes every live connection of `code`.
    pub fn close_branch(&self, code: &BranchCode, why: &str) {
        let live = edge::lock(&self.live);
        for (_, _, conn) in live.iter().filter(|(b, _, _)| b == code) {
            conn.close(door::CLOSE_REVOKED, why.as_bytes());
        }
    }

    /// Counts a refused peer and logs at most one line a second with the counters (and
    /// HQ's disk writes so far, which refused peers must not move).
    fn door_refused(&self, peer: SocketAddr, why: &str) {
        let n = self.refused_unknown.fetch_add(1, Ordering::Relaxed) + 1;
        let now = now_unix();
        let last = self.door_logged_unix.load(Ordering::Relaxed);
        if now > last && self.door_logged_unix.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
            info!(refused_unknown = n, store_writes = self.store.writes(), %peer, reason = why, "door: hello refused, no enrolled key");
        }
    }

    /// Call after enqueueing down messages: connected sessions send them.
    pub fn down_changed(&self) {
        self.down_enqueued.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Down channel, under the state lock: record what the branch said it applied (its
    /// hello or a `DownAck`), then the window of messages it still lacks.
    fn down_step(&self, st: &mut State, session: &mut HqSession) -> Vec<Message> {
        let Some(branch) = session.branch().copied() else { return Vec::new() };
        if let Err(e) = self.store.down_ack(st, &branch, session.down_acked()) {
            warn!(branch = %branch, error = %e, "down ack not recorded");
        }
        st.down.queues.get(&branch).map(|q| session.down_window(q)).unwrap_or_default()
    }

    /// Call after changing branches, products or credit limits: sessions push the news.
    pub fn profile_changed(&self) {
        let v = self.state().profile_version;
        self.profile_version.send_replace(v);
    }

    /// The state lock. A panic while holding it would be a bug in this process; the
    /// state on disk is still consistent, so we keep serving with what memory holds.
    pub fn state(&self) -> MutexGuard<'_, State> {
        edge::lock(&self.state)
    }

    pub fn token_text(&self, branch: &protocol::codes::BranchCode, secret: [u8; 16]) -> String {
        EnrollToken { branch: *branch, secret, hq_cert_fingerprint: self.fingerprint }.encode()
    }

    /// Handles one message: decide, apply durably if needed, and return what to send
    /// back and whether to close the stream.
    ///
    /// The step holds its branch's writer lock (`BranchBooks::writer`) from the decision
    /// to the durable commit and the down window after it, so steps of one branch (two
    /// connections of a reinstalled store) run one at a time while different branches'
    /// steps run in parallel; the state lock is only taken for short stretches in between.
    fn step(&self, session: &mut HqSession, msg: Message, peer: SocketAddr, who: &Peer) -> (Vec<Message>, bool) {
        if let Message::Enroll { token, branch_key } = msg {
            let (reply, close) = self.enroll(&token, branch_key, peer);
            return (vec![reply], close);
        }
        // The branch this step is about: its session's, or the one a hello names.
        let branch = session.branch().copied().or(match &msg {
            Message::Hello { branch, .. } => Some(*branch),
            _ => None,
        });
        let slot = branch.and_then(|b| self.state().books_slot(&b));
        let mut work = slot.as_ref().map(|s| s.writer());
        let writer = slot.as_deref().zip(work.as_deref_mut()).zip(branch);
        let (reply, close) = self.step_one(session, msg, peer, who, writer);
        let mut out: Vec<Message> = reply.into_iter().collect();
        if !close {
            out.extend(self.down_step(&mut self.state(), session));
        }
        drop(work);
        (out, close)
    }

    fn step_one(
        &self,
        session: &mut HqSession,
        msg: Message,
        peer: SocketAddr,
        who: &Peer,
        writer: Option<((&BranchBooks, &mut Option<Books>), BranchCode)>,
    ) -> (Option<Message>, bool) {
        let mut st = self.state();
        // The door: a hello is let through only for the branch whose enrolled key the
        // peer proved in the handshake, checked against the index now (not as of the
        // connection's start), before anything about any branch is looked up.
        if let Message::Hello { branch, .. } = &msg {
            if let Err(refusal) = door::admit(&st.keys, who, branch) {
                return match refusal.known_branch {
                    None => {
                        drop(st);
                        self.door_refused(peer, &refusal.text);
                        (Some(Message::reject(RejectCode::UnknownBranch, refusal.text)), true)
                    }
                    Some(b) => {
                        warn!(branch = %b, %peer, reason = %refusal.text, "refused");
                        let rej = Rejection {
                            at_unix: now_unix(),
                            code: RejectCode::UnknownBranch,
                            text: refusal.text.clone(),
                            peer: peer.to_string(),
                        };
                        if let Err(e) = self.store.record_rejection(&mut st, Some(&b), rej) {
                            tracing::error!(error = %format!("{e:#}"), "recording rejection");
                        }
                        (Some(Message::reject(RejectCode::UnknownBranch, refusal.text)), true)
                    }
                };
            }
        }
        if let Message::Hello { branch, head, .. } = &msg {
            self.metrics.announce(branch, head.seq);
        }
        let facts = Ctx { st: &st, store: &self.store }.facts(session, &msg);
        let step = session.handle(msg, facts);
        if let Some(b) = session.branch() {
            st.last_seen_unix.insert(*b, now_unix());
        }
        match step {
            HqStep::Reply(m) => (Some(m), false),
            HqStep::DownAcked { .. } => (None, false),
            HqStep::StoreDraft { branch, draft } => {
                let id = draft.id;
                match self.store.put_draft(&mut st, *draft, now_unix()) {
                    Ok(new) => {
                        if new {
                            info!(branch = %branch, draft = id, "draft received for approval");
                        }
                        (Some(Message::DraftAck { id }), false)
                    }
                    Err(e @ (crate::store::StoreError::DraftConflict { .. } | crate::store::StoreError::TooManyDrafts { .. })) => {
                        warn!(branch = %branch, draft = id, %peer, reason = %e, "draft refused");
                        let rej =
                            Rejection { at_unix: now_unix(), code: RejectCode::Malformed, text: e.to_string(), peer: peer.to_string() };
                        if let Err(e) = self.store.record_rejection(&mut st, Some(&branch), rej) {
                            tracing::error!(error = %format!("{e:#}"), "recording rejection");
                        }
                        (Some(Message::reject(RejectCode::Malformed, e.to_string())), false)
                    }
                    Err(e) => {
                        tracing::error!(branch = %branch, error = %format!("{e:#}"), "storing a draft failed");
                        (Some(Message::reject(RejectCode::Internal, "HQ could not store the draft; it will be retried")), true)
                    }
                }
            }
            HqStep::Apply { branch, entries, new_head, batch, batch_first_seq } => {
                drop(st);
                // The writer lock taken before the decision must be this branch's: the
                // head the session decided on cannot move before the commit.
                let started = std::time::Instant::now();
                let applied = match writer {
                    Some(((slot, work), locked)) if locked == branch => {
                        self.store.apply_shared(&self.state, slot, work, &branch, entries, new_head, &batch, batch_first_seq, now_unix())
                    }
                    _ => Err(crate::store::StoreError::NoBranch(branch)),
                };
                match applied {
                    Ok(outcome) => {
                        self.metrics.applied(&branch, outcome.applied, outcome.lines, new_head.seq, started.elapsed(), outcome.flush);
                        info!(branch = %branch, head = new_head.seq, applied = outcome.applied, lines = outcome.lines, "batch applied");
                        for (seq, why) in &outcome.quarantined {
                            let applied = !outcome.unapplied.contains(seq);
                            warn!(branch = %branch, seq, applied, reason = %why, "document quarantined: kept and marked for review");
                        }
                        for (seq, why) in &outcome.flagged {
                            warn!(branch = %branch, seq, reason = %why, "document flagged: applied, posted under a replaced profile version");
                        }
                        if outcome.forwarded > 0 {
                            // Shipments went down other branches' queues: wake their sessions.
                            self.down_changed();
                        }
                        (Some(session.applied(new_head)), false)
                    }
                    Err(e) => {
                        // Nothing was acked; the branch will resend after reconnecting.
                        tracing::error!(branch = %branch, error = %format!("{e:#}"), "applying batch failed");
                        (Some(Message::reject(RejectCode::Internal, "HQ could not store the batch; it will be retried")), true)
                    }
                }
            }
            HqStep::Refuse { branch, code, reply, fatal } => {
                let text = match &reply {
                    Message::Reject { text, .. } => text.clone(),
                    _ => String::new(),
                };
                warn!(branch = ?branch.as_ref().map(|b| b.as_str()), ?code, %peer, reason = %text, "refused");
                let rej = Rejection { at_unix: now_unix(), code, text, peer: peer.to_string() };
                if let Err(e) = self.store.record_rejection(&mut st, branch.as_ref(), rej) {
                    tracing::error!(error = %format!("{e:#}"), "recording rejection");
                }
                (Some(reply), fatal)
            }
        }
    }

    fn enroll(&self, token: &str, branch_key: [u8; 32], peer: SocketAddr) -> (Message, bool) {
        let mut st = self.state();
        let parsed = EnrollToken::parse(token).map_err(|e| e.to_string()).and_then(|t| {
            if t.hq_cert_fingerprint != self.fingerprint {
                return Err("token was issued by a different HQ (certificate fingerprint differs)".into());
            }
            self.store.enroll(&mut st, &t.branch, &t.secret, branch_key, now_unix()).map(|p| (t.branch, p)).map_err(|e| e.to_string())
        });
        match parsed {
            Ok((branch, profile)) => {
                info!(branch = %branch, %peer, "branch enrolled");
                let hq_down_key = st.down.key.as_ref().map(|k| k.verifying_key().to_bytes()).unwrap_or_default();
                (Message::Enrolled { profile, hq_down_key }, true)
            }
            Err(text) => {
                warn!(%peer, reason = %text, "enrollment refused");
                // Kept only for a token HQ issued (used or expired); a guessed one is
                // counted, not written, so strangers cannot make HQ write.
                let branch = EnrollToken::parse(token).ok().filter(|_| !text.contains("unknown enrollment token")).map(|t| t.branch);
                let rej = Rejection { at_unix: now_unix(), code: RejectCode::BadToken, text: text.clone(), peer: peer.to_string() };
                if let Err(e) = self.store.record_rejection(&mut st, branch.as_ref(), rej) {
                    tracing::error!(error = %format!("{e:#}"), "recording rejection");
                }
                (Message::reject(RejectCode::BadToken, text), true)
            }
        }
    }
}

/// Why HQ's QUIC endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// rustls refused the TLS 1.3 configuration.
    #[error("TLS 1.3 setup: {0}")]
    Tls(rustls::Error),
    /// rustls refused HQ's certificate or key.
    #[error("loading HQ certificate: {0}")]
    Certificate(rustls::Error),
    /// quinn found no initial cipher suite in the TLS configuration.
    #[error("QUIC TLS setup: {0}")]
    Quic(quinn::crypto::rustls::NoInitialCipherSuite),
    /// The UDP port could not be bound (in use, or not allowed).
    #[error("binding QUIC listener on {listen} (UDP): {error}")]
    Bind { listen: SocketAddr, error: std::io::Error },
}

/// Why one stream's session ended early (logged, never sent).
#[derive(Debug, thiserror::Error)]
enum StreamError {
    /// A blocking step (named) panicked or was cancelled.
    #[error("{0} panicked: {1}")]
    Panicked(&'static str, tokio::task::JoinError),
    #[error("{0}")]
    Read(quinn::ReadError),
    #[error("{0}")]
    Write(#[from] quinn::WriteError),
    #[error("{0}")]
    Finish(#[from] quinn::ClosedStream),
    #[error("recording a rejection: {0}")]
    Store(#[from] crate::store::StoreError),
}

pub fn endpoint(identity: &Identity, config: &HqConfig, listen: SocketAddr) -> Result<quinn::Endpoint, EndpointError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(EndpointError::Tls)?
        .with_client_cert_verifier(Arc::new(door::BranchCertVerifier::new(provider)))
        .with_single_cert(vec![identity.cert.clone()], identity.key.clone_key())
        .map_err(EndpointError::Certificate)?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls).map_err(EndpointError::Quic)?));
    server.transport_config(edge::hq_transport_config(edge::HqTransportLimits {
        bidi_streams_max: config.max_concurrent_bidi_streams.max(1),
        stream_window_bytes: config.stream_window_bytes,
        connection_window_bytes: config.connection_window_bytes,
    }));
    // Handshakes waiting to be accepted are bounded too, not only connections.
    server.max_incoming(config.max_connections.max(1) as usize);
    quinn::Endpoint::server(server, listen).map_err(|error| EndpointError::Bind { listen, error })
}

pub async fn serve_quic(hq: Arc<Hq>, endpoint: quinn::Endpoint) {
    hq.metrics.set_listening(true);
    while let Some(incoming) = endpoint.accept().await {
        // A slot per connection, handshake included; none free → refused at once.
        let Ok(slot) = hq.connections.clone().try_acquire_owned() else {
            hq.refused_busy.fetch_add(1, Ordering::Relaxed);
            incoming.refuse();
            continue;
        };
        let hq = hq.clone();
        tokio::spawn(async move {
            let peer = incoming.remote_address();
            match incoming.await {
                Ok(conn) => serve_connection(hq, conn).await,
                Err(e) => debug!(%peer, error = %e, "handshake failed"),
            }
            drop(slot);
        });
    }
}

async fn serve_connection(hq: Arc<Hq>, conn: quinn::Connection) {
    let peer = conn.remote_address();
    let who = door::peer_of(&conn);
    info!(%peer, ?who, "connection");
    let _open = hq.metrics.connection_opened();
    let registered = match &who {
        Peer::Key(k) => match hq.state().keys.lookup(k) {
            Some(crate::store::KeyStatus::Enrolled(b)) => {
                edge::lock(&hq.live).push((*b, conn.stable_id(), conn.clone()));
                true
            }
            _ => false,
        },
        Peer::Anonymous => false,
    };
    let who = Arc::new(who);
    serve_streams(&hq, &conn, peer, &who, registered).await;
    if registered {
        edge::lock(&hq.live).retain(|(_, id, _)| *id != conn.stable_id());
    }
}

async fn serve_streams(hq: &Arc<Hq>, conn: &quinn::Connection, peer: SocketAddr, who: &Arc<Peer>, enrolled: bool) {
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(e) => {
                info!(%peer, error = %e, "connection closed");
                return;
            }
        };
        let hq = hq.clone();
        let conn = conn.clone();
        let who = who.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_stream(hq, send, recv, peer, who, enrolled).await {
                debug!(%peer, error = %format!("{e:#}"), "stream ended");
            }
            drop(conn);
        });
    }
}

/// Messages read from one stream, buffered between the reader task and the session loop.
const INBOX_MESSAGES_MAX: usize = 16;

async fn serve_stream(
    hq: Arc<Hq>,
    mut send: quinn::SendStream,
    recv: quinn::RecvStream,
    peer: SocketAddr,
    who: Arc<Peer>,
    enrolled: bool,
) -> Result<(), StreamError> {
    let mut session = HqSession::default();
    // A reader task turns the stream into a channel, so the loop can also wait for
    // profile changes without cancelling a half-read frame. Every frame's bytes come
    // from HQ's shared budget. Only a peer whose key was enrolled when it connected may
    // send frames as large as a batch; any other may only enroll (a token and a key).
    let frame_bytes_max = if enrolled { protocol::wire::FRAME_BYTES_MAX } else { door::ANONYMOUS_FRAME_BYTES_MAX };
    let mut inbox = edge::spawn_budgeted_reader(recv, INBOX_MESSAGES_MAX, hq.budget.clone(), frame_bytes_max);
    let mut profile_rx = hq.profile_version.subscribe();
    let mut down_rx = hq.down_enqueued.subscribe();
    loop {
        let msg = tokio::select! {
            changed = down_rx.changed() => {
                if changed.is_ok() {
                    // Under the branch's writer lock (as in `step`) and on a blocking thread:
                    // the down ack it records is a sled write.
                    let hq2 = hq.clone();
                    let (window, s) = tokio::task::spawn_blocking(move || {
                        let slot = session.branch().and_then(|b| hq2.state().books_slot(b));
                        let work = slot.as_ref().map(|s| s.writer());
                        let window = hq2.down_step(&mut hq2.state(), &mut session);
                        drop(work);
                        (window, session)
                    })
                    .await
                    .map_err(|e| StreamError::Panicked("down step", e))?;
                    session = s;
                    for m in &window {
                        write_message(&mut send, m).await?;
                    }
                }
                continue;
            }
            m = inbox.recv() => m,
            changed = profile_rx.changed() => {
                if changed.is_ok() {
                    // Building a profile (the whole catalog) is work: off the async workers.
                    let hq2 = hq.clone();
                    let (update, s) = tokio::task::spawn_blocking(move || {
                        let update = {
                            let st = hq2.state();
                            session.profile_update(&Ctx { st: &st, store: &hq2.store })
                        };
                        (update, session)
                    })
                    .await
                    .map_err(|e| StreamError::Panicked("profile update", e))?;
                    session = s;
                    if let Some(m) = update {
                        write_message(&mut send, &m).await?;
                    }
                }
                continue;
            }
        };
        let msg = match msg {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(()),
            Err(FrameError::Link(e)) => return Err(StreamError::Read(e)),
            Err(e) => {
                // Garbage or a cut frame: say why, keep it for people, close this stream.
                let text = format!("unreadable frame: {e}");
                warn!(%peer, branch = ?session.branch().map(|b| b.as_str()), reason = %text, "refused");
                let hq2 = hq.clone();
                let branch = session.branch().cloned();
                let rej = Rejection { at_unix: now_unix(), code: RejectCode::Malformed, text: text.clone(), peer: peer.to_string() };
                tokio::task::spawn_blocking(move || {
                    let mut st = hq2.state();
                    hq2.store.record_rejection(&mut st, branch.as_ref(), rej)
                })
                .await
                .map_err(|e| StreamError::Panicked("recording a rejection", e))??;
                hq.metrics.rejected(RejectCode::Malformed);
                let _ = write_message(&mut send, &Message::reject(RejectCode::Malformed, text)).await;
                let _ = send.finish();
                return Ok(());
            }
        };
        let hq2 = hq.clone();
        let who2 = who.clone();
        let (reply, close, s) = tokio::task::spawn_blocking(move || {
            let (reply, close) = hq2.step(&mut session, msg, peer, &who2);
            (reply, close, session)
        })
        .await
        .map_err(|e| StreamError::Panicked("session step", e))?;
        session = s;
        for m in &reply {
            if let Message::Reject { code, .. } = m {
                hq.metrics.rejected(*code);
            }
            write_message(&mut send, m).await?;
        }
        if close {
            send.finish()?;
            // Give the peer a moment to read the reason before the stream goes away.
            let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
            return Ok(());
        }
    }
}
