//! Drafts awaiting HQ's approval, at the branch (`protocol::approval`): a document the
//! profile's approval rules say needs HQ's approval is stored here as a draft, sent up
//! (signed by the branch key) until HQ acks it, decided at HQ, and the decision comes
//! down the signed down channel. Only an approved draft posts, once. A draft never
//! touches the books or the journal.
//!
//! Each concern has its own key, written by one writer, so no write reads-modifies-writes
//! another's record:
//! `q` id(be) → [`DraftRecord`] (written once, flushed before `POST /api/drafts` answers);
//! `Q` id(be) → () HQ holds it (the forwarder, after `DraftAck`; advisory: a resend is harmless);
//! `R` id(be) → [`DraftDecision`] (the down receiver, in the write of its notice);
//! `P` id(be) → [`DraftPosted`] (`Store::post`, in the write of the document).
//! Must not post anything itself (`Store::post` does), nor touch the wire.

use std::sync::Mutex;

use protocol::approval::{DraftUp, Need, SignedDraft, DRAFTS_WAITING_MAX};
use protocol::codes::OperatorId;
use protocol::document::{Document, Draft};
use protocol::record;
use protocol::SigningKey;
use serde::{Deserialize, Serialize};

use crate::store::{PostFailure, Store};

/// A draft as the branch keeps it, with the signed bytes it sends up.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DraftRecord {
    pub up: DraftUp,
    /// `SignedDraft::to_bytes`, signed once when stored.
    pub signed: Vec<u8>,
}

/// HQ's decision, as the down channel brought it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DraftDecision {
    pub approved: bool,
    pub by: OperatorId,
    pub note: String,
    pub down_seq: u64,
}

/// The document an approved draft became.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DraftPosted {
    pub number: String,
    pub seq: u64,
}

fn id_key(prefix: u8, id: u64) -> [u8; 9] {
    let mut k = [prefix; 9];
    k[1..].copy_from_slice(&id.to_be_bytes());
    k
}

fn get<T: serde::de::DeserializeOwned>(tree: &sled::Tree, prefix: u8, id: u64) -> anyhow::Result<Option<T>> {
    let k = id_key(prefix, id);
    match tree.get(k)? {
        Some(v) => Ok(Some(record::open(&format!("{}/{id}", prefix as char), &v)?)),
        None => Ok(None),
    }
}

/// Why a draft cannot be made or posted.
#[derive(Debug, thiserror::Error)]
pub enum DraftFailure {
    /// The document is refused as it stands (it would not post even if approved).
    #[error(transparent)]
    Post(#[from] PostFailure),
    #[error("this document needs no HQ approval; post it with POST /api/documents")]
    NotNeeded,
    #[error("{0} drafts are waiting for HQ's decision; no more until HQ decides some")]
    TooMany(usize),
    #[error("no draft {0} at this branch")]
    Unknown(u64),
    /// Not approved (yet), refused, or already posted.
    #[error("{0}")]
    NotPostable(String),
    #[error("storage failed, nothing was changed: {0:#}")]
    Storage(anyhow::Error),
}

/// The drafts' lock: ids are handed out one at a time.
#[derive(Default)]
pub struct Drafts {
    lock: Mutex<()>,
}

impl Drafts {
    /// Judges `draft` against the books and the profile's approval rules; when it needs
    /// approval, stores it durably (signed, ready to send) and returns the record.
    pub fn create(&self, store: &Store, draft: Draft, now_unix: u64) -> Result<DraftRecord, DraftFailure> {
        let _guard = edge::lock(&self.lock);
        let (needs, profile_version) = store.judge(&draft)?;
        if needs.is_empty() {
            return Err(DraftFailure::NotNeeded);
        }
        let tree = store.tree();
        let (mut last, mut waiting) = (0, 0);
        for item in tree.scan_prefix([b'q']) {
            let (k, _) = item.map_err(|e| DraftFailure::Storage(e.into()))?;
            let id = u64::from_be_bytes(k[1..9].try_into().map_err(|_| DraftFailure::Storage(anyhow::anyhow!("short draft key")))?);
            last = last.max(id);
            let decided = tree.contains_key(id_key(b'R', id)).map_err(|e| DraftFailure::Storage(e.into()))?;
            if !decided {
                waiting += 1;
            }
        }
        if waiting >= DRAFTS_WAITING_MAX {
            return Err(DraftFailure::TooMany(waiting));
        }
        let up = DraftUp { branch: store.identity().branch, id: last + 1, created_unix: now_unix, profile_version, draft, needs };
        let key = SigningKey::from_bytes(&store.identity().signing_key);
        let signed = SignedDraft::sign(&up, &key).map_err(|e| DraftFailure::NotPostable(e.to_string()))?.to_bytes();
        let rec = DraftRecord { up, signed };
        tree.insert(id_key(b'q', rec.up.id), record::seal(&rec)).map_err(|e| DraftFailure::Storage(e.into()))?;
        store.flush_durable().map_err(DraftFailure::Storage)?;
        Ok(rec)
    }

    /// Posts approved draft `id` as `operator` (the signed-in person): the document
    /// records the approval in `ext.approval`, and `Store::post` marks the draft posted
    /// in the same write.
    pub fn post(&self, store: &Store, id: u64, operator: OperatorId) -> Result<crate::store::Posted, DraftFailure> {
        let rec: DraftRecord = get(store.tree(), b'q', id).map_err(DraftFailure::Storage)?.ok_or(DraftFailure::Unknown(id))?;
        let mut draft = rec.up.draft;
        draft.operator = operator;
        draft.ext.approval = Some(id);
        Ok(store.post(draft)?)
    }

    /// Unacked drafts' signed bytes, oldest first (what the forwarder sends after a resume).
    pub fn unacked(&self, store: &Store) -> anyhow::Result<Vec<(u64, Vec<u8>)>> {
        let tree = store.tree();
        let mut out = Vec::new();
        for item in tree.scan_prefix([b'q']) {
            let (_, v) = item?;
            let rec: DraftRecord = record::open(&"q/draft", &v)?;
            if !tree.contains_key(id_key(b'Q', rec.up.id))? && !tree.contains_key(id_key(b'R', rec.up.id))? {
                out.push((rec.up.id, rec.signed));
            }
            if out.len() >= DRAFTS_WAITING_MAX {
                break;
            }
        }
        Ok(out)
    }

    /// HQ holds draft `id`. Not flushed: a lost mark only resends what HQ acks again.
    pub fn acked(&self, store: &Store, id: u64) -> anyhow::Result<()> {
        store.tree().insert(id_key(b'Q', id), record::seal(&()))?;
        Ok(())
    }

    /// Every draft with its state, oldest first.
    pub fn list(&self, store: &Store) -> anyhow::Result<Vec<serde_json::Value>> {
        let tree = store.tree();
        let mut out = Vec::new();
        for item in tree.scan_prefix([b'q']) {
            let (_, v) = item?;
            let rec: DraftRecord = record::open(&"q/draft", &v)?;
            let id = rec.up.id;
            let decision: Option<DraftDecision> = get(tree, b'R', id)?;
            let posted: Option<DraftPosted> = get(tree, b'P', id)?;
            let sent = tree.contains_key(id_key(b'Q', id))? || decision.is_some();
            let state = match (&decision, &posted) {
                (_, Some(_)) => "posted",
                (Some(d), None) if d.approved => "approved",
                (Some(_), None) => "refused",
                (None, None) => "waiting",
            };
            out.push(serde_json::json!({
                "id": id,
                "state": state,
                "at_hq": sent,
                "created_unix": rec.up.created_unix,
                "profile_version": rec.up.profile_version,
                "needs": rec.up.needs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "draft": rec.up.draft,
                "by": decision.as_ref().map(|d| d.by),
                "note": decision.as_ref().map(|d| d.note.clone()),
                "posted": posted,
            }));
        }
        Ok(out)
    }
}

/// The decision write for a down `Approval`, into the down receiver's batch (with its
/// notice and applied seq). A second decision on the same draft is ignored, as is one
/// for a draft this branch does not hold (the notice still records it).
pub(crate) fn stage_decision(tree: &sled::Tree, batch: &mut sled::Batch, id: u64, decision: DraftDecision) -> anyhow::Result<()> {
    if tree.contains_key(id_key(b'q', id))? && !tree.contains_key(id_key(b'R', id))? {
        batch.insert(&id_key(b'R', id), record::seal(&decision));
    }
    Ok(())
}

/// `Store::post`'s check for a document that needs approval: it must name an approved
/// draft not yet posted, and be that draft. Returns the write that marks it posted.
pub(crate) fn approval_for_post(tree: &sled::Tree, doc: &Document, seq: u64, needs: &[Need]) -> Result<([u8; 9], Vec<u8>), String> {
    let why = protocol::approval::describe(needs);
    let Some(id) = doc.header.ext.approval else {
        return Err(format!(
            "{} needs HQ approval ({why}): save it as a draft with POST /api/drafts (same JSON), and post it with POST /api/drafts/{{id}}/post once HQ approves",
            doc.header.doc_type.name()
        ));
    };
    let storage = |e: anyhow::Error| format!("reading draft {id}: {e:#}");
    let rec: DraftRecord = get(tree, b'q', id).map_err(storage)?.ok_or_else(|| format!("no draft {id} at this branch"))?;
    let decision: Option<DraftDecision> = get(tree, b'R', id).map_err(storage)?;
    match decision {
        None => return Err(format!("draft {id} is waiting for HQ's decision ({why}); post it once HQ approves")),
        Some(d) if !d.approved => return Err(format!("draft {id} was refused by {}: {}; it cannot be posted", d.by, d.note)),
        Some(_) => {}
    }
    if let Some(p) = get::<DraftPosted>(tree, b'P', id).map_err(storage)? {
        return Err(format!("draft {id} was already posted as {}", p.number));
    }
    if !protocol::approval::matches(&rec.up.draft, doc) {
        return Err(format!("the document differs from draft {id} that HQ approved"));
    }
    let posted = DraftPosted { number: doc.header.number.to_string(), seq };
    Ok((id_key(b'P', id), record::seal(&posted)))
}
