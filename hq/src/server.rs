//! The running HQ: shared state, and the QUIC listener that feeds branch sessions.
//!
//! Each branch connection opens one bidirectional stream and speaks framed
//! `protocol::wire::Message`s, read and written through the `edge` crate shared with the
//! branch agent. This module only moves bytes: decisions come from
//! `protocol::sync::HqSession`, durable changes from `store`. A session's step (decide +
//! apply + flush) runs under the state lock on a blocking thread, so applies from
//! different branches are serialized and an ack is only ever sent after its flush.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::Context;
use edge::{write_message, FrameError};
use protocol::sync::{HqSession, HqStep};
use protocol::token::EnrollToken;
use protocol::wire::{Message, RejectCode, ALPN};
use quinn::crypto::rustls::QuicServerConfig;
use tracing::{debug, info, warn};

use crate::config::HqConfig;
use crate::identity::Identity;
use crate::store::{Ctx, Rejection, State, Store};

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
}

impl Hq {
    pub fn new(store: Store, state: State, config: HqConfig, fingerprint: [u8; 32]) -> Hq {
        let (profile_version, _) = tokio::sync::watch::channel(state.profile_version);
        Hq { store, state: Mutex::new(state), config, fingerprint, profile_version }
    }

    /// Call after changing branches, products or credit limits: sessions push the news.
    pub fn profile_changed(&self) {
        let v = self.state().profile_version;
        self.profile_version.send_replace(v);
    }

    /// The state lock. A panic while holding it would be a bug in this process; the
    /// state on disk is still consistent, so we keep serving with what memory holds.
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn token_text(&self, branch: &protocol::codes::BranchCode, secret: [u8; 16]) -> String {
        EnrollToken { branch: *branch, secret, hq_cert_fingerprint: self.fingerprint }.encode()
    }

    /// Handles one message: decide, apply durably if needed, and return what to send
    /// back and whether to close the stream.
    fn step(&self, session: &mut HqSession, msg: Message, peer: SocketAddr) -> (Message, bool) {
        if let Message::Enroll { token, branch_key } = msg {
            return self.enroll(&token, branch_key, peer);
        }
        let mut st = self.state();
        let facts = Ctx { st: &st, store: &self.store }.facts(session, &msg);
        let step = session.handle(msg, facts);
        if let Some(b) = session.branch() {
            st.last_seen_unix.insert(*b, now_unix());
        }
        match step {
            HqStep::Reply(m) => (m, false),
            HqStep::Apply { branch, entries, new_head, batch, batch_first_seq } => {
                match self.store.apply(&mut st, &branch, entries, new_head, &batch, batch_first_seq, now_unix()) {
                    Ok(outcome) => {
                        debug!(branch = %branch, head = new_head.seq, applied = outcome.applied, "batch applied");
                        for (seq, why) in &outcome.quarantined {
                            let applied = !outcome.unapplied.contains(seq);
                            warn!(branch = %branch, seq, applied, reason = %why, "document quarantined: kept and marked for review");
                        }
                        for (seq, why) in &outcome.flagged {
                            warn!(branch = %branch, seq, reason = %why, "document flagged: applied, posted under a replaced profile version");
                        }
                        (session.applied(new_head), false)
                    }
                    Err(e) => {
                        // Nothing was acked; the branch will resend after reconnecting.
                        tracing::error!(branch = %branch, error = %format!("{e:#}"), "applying batch failed");
                        (Message::reject(RejectCode::Internal, "HQ could not store the batch; it will be retried"), true)
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
                (reply, fatal)
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
                (Message::Enrolled { profile }, true)
            }
            Err(text) => {
                warn!(%peer, reason = %text, "enrollment refused");
                let branch = EnrollToken::parse(token).ok().map(|t| t.branch);
                let rej = Rejection { at_unix: now_unix(), code: RejectCode::BadToken, text: text.clone(), peer: peer.to_string() };
                if let Err(e) = self.store.record_rejection(&mut st, branch.as_ref(), rej) {
                    tracing::error!(error = %format!("{e:#}"), "recording rejection");
                }
                (Message::reject(RejectCode::BadToken, text), true)
            }
        }
    }
}

pub fn endpoint(identity: &Identity, listen: SocketAddr) -> anyhow::Result<quinn::Endpoint> {
    let mut tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .context("TLS 1.3 setup")?
        .with_no_client_auth()
        .with_single_cert(vec![identity.cert.clone()], identity.key.clone_key())
        .context("loading HQ certificate")?;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let mut server = quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(tls).context("QUIC TLS setup")?));
    server.transport_config(edge::transport_config());
    quinn::Endpoint::server(server, listen).with_context(|| format!("binding QUIC listener on {listen} (UDP)"))
}

pub async fn serve_quic(hq: Arc<Hq>, endpoint: quinn::Endpoint) {
    while let Some(incoming) = endpoint.accept().await {
        let hq = hq.clone();
        tokio::spawn(async move {
            let peer = incoming.remote_address();
            match incoming.await {
                Ok(conn) => serve_connection(hq, conn).await,
                Err(e) => debug!(%peer, error = %e, "handshake failed"),
            }
        });
    }
}

async fn serve_connection(hq: Arc<Hq>, conn: quinn::Connection) {
    let peer = conn.remote_address();
    debug!(%peer, "connection");
    loop {
        let (send, recv) = match conn.accept_bi().await {
            Ok(s) => s,
            Err(e) => {
                debug!(%peer, error = %e, "connection closed");
                return;
            }
        };
        let hq = hq.clone();
        let conn = conn.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_stream(hq, send, recv, peer).await {
                debug!(%peer, error = %format!("{e:#}"), "stream ended");
            }
            drop(conn);
        });
    }
}

/// Messages read from one stream, buffered between the reader task and the session loop.
const INBOX_MESSAGES_MAX: usize = 16;

async fn serve_stream(hq: Arc<Hq>, mut send: quinn::SendStream, recv: quinn::RecvStream, peer: SocketAddr) -> anyhow::Result<()> {
    let mut session = HqSession::default();
    // A reader task turns the stream into a channel, so the loop can also wait for
    // profile changes without cancelling a half-read frame.
    let mut inbox = edge::spawn_reader(recv, INBOX_MESSAGES_MAX);
    let mut profile_rx = hq.profile_version.subscribe();
    loop {
        let msg = tokio::select! {
            m = inbox.recv() => m,
            changed = profile_rx.changed() => {
                if changed.is_ok() {
                    let update = {
                        let st = hq.state();
                        session.profile_update(&Ctx { st: &st, store: &hq.store })
                    };
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
            Err(FrameError::Link(e)) => return Err(e.into()),
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
                .await??;
                let _ = write_message(&mut send, &Message::reject(RejectCode::Malformed, text)).await;
                let _ = send.finish();
                return Ok(());
            }
        };
        let hq2 = hq.clone();
        let (reply, close, s) = tokio::task::spawn_blocking(move || {
            let (reply, close) = hq2.step(&mut session, msg, peer);
            (reply, close, session)
        })
        .await
        .context("session step panicked")?;
        session = s;
        write_message(&mut send, &reply).await?;
        if close {
            send.finish()?;
            // Give the peer a moment to read the reason before the stream goes away.
            let _ = tokio::time::timeout(Duration::from_secs(2), send.stopped()).await;
            return Ok(());
        }
    }
}
