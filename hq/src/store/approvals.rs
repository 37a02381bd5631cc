//! HQ's approval queue on disk: the approval rules HQ issues with every profile version
//! (`m`approval_rules → `ApprovalRules`), and each draft a branch sent up with the
//! decision on it (`y` branch 0x00 id(be u64) → [`ApprovalItem`]).
//!
//! Every change is one sled write and a flush before memory follows. A decision and the
//! down message that carries it to the branch are in the same write, so neither exists
//! without the other. A draft stored again with the same content (the branch resends
//! until acked) changes nothing. Must not touch the journal or the books; the apply
//! pipeline asks [`granted`] whether a posted document carries an approval HQ gave.

use std::collections::BTreeMap;

use protocol::approval::{ApprovalRules, DraftUp, DRAFTS_WAITING_MAX};
use protocol::codes::{BranchCode, OperatorId};
use protocol::document::Document;
use protocol::down::DownBody;
use protocol::record;
use serde::{Deserialize, Serialize};

use super::error::{Result, StoreError};
use super::keys::{key, open_rec};
use super::state::State;
use super::Store;

const RULES: &[u8] = b"approval_rules";

/// An approval decision at HQ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalDecision {
    pub approved: bool,
    pub by: String,
    pub note: String,
    pub at_unix: u64,
    /// The down message that carries it to the branch.
    pub down_seq: u64,
}

/// A draft in HQ's approval queue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalItem {
    pub draft: DraftUp,
    pub received_unix: u64,
    pub decision: Option<ApprovalDecision>,
    /// The branch seq of the posted document that used this approval, once it arrived.
    pub posted_seq: Option<u64>,
}

/// The approval rules and queue in memory.
#[derive(Default)]
pub struct ApprovalState {
    pub rules: ApprovalRules,
    pub items: BTreeMap<(BranchCode, u64), ApprovalItem>,
}

pub(crate) fn item_key(branch: &BranchCode, id: u64) -> Vec<u8> {
    key(b'y', &[branch.as_str().as_bytes(), &id.to_be_bytes()])
}

/// Whether posted `doc` (branch seq `seq`) carries an approval HQ granted for exactly this
/// document and not used by another one; `Err` says why not, for the quarantine reason.
pub fn granted(st: &State, branch: &BranchCode, seq: u64, doc: &Document) -> std::result::Result<(), String> {
    let Some(id) = doc.header.ext.approval else {
        return Err("it names no approval".into());
    };
    let Some(item) = st.approvals.items.get(&(*branch, id)) else {
        return Err(format!("it names approval of draft {id}, which HQ never received"));
    };
    match &item.decision {
        None => return Err(format!("it names draft {id}, which HQ has not decided")),
        Some(d) if !d.approved => return Err(format!("it names draft {id}, which {} refused", d.by)),
        Some(_) => {}
    }
    if let Some(used) = item.posted_seq.filter(|s| *s != seq) {
        return Err(format!("approval of draft {id} was already used by document {used}"));
    }
    if !protocol::approval::matches(&item.draft.draft, doc) {
        return Err(format!("it differs from draft {id} that HQ approved"));
    }
    Ok(())
}

impl Store {
    /// Loads the rules and every branch's approval items (at start, before profiles are issued).
    pub(crate) fn load_approvals(&self, st: &mut State) -> Result<()> {
        if let Some(v) = self.tree.get(key(b'm', &[RULES]))? {
            st.approvals.rules = open_rec(b"m/approval_rules", &v)?;
        }
        for item in self.tree.scan_prefix([b'y']) {
            let (k, v) = item?;
            let it: ApprovalItem = open_rec(&k, &v)?;
            st.approvals.items.insert((it.draft.branch, it.draft.id), it);
        }
        Ok(())
    }

    /// Replaces the approval rules: a new profile version for every branch, issued at once.
    pub fn set_approval_rules(&self, st: &mut State, rules: ApprovalRules) -> Result<()> {
        rules.validate().map_err(StoreError::BadRules)?;
        let mut batch = sled::Batch::default();
        batch.insert(key(b'm', &[RULES]), record::seal(&rules));
        let version = self.bump_profile(st, &mut batch);
        self.tree.apply_batch(batch)?;
        self.flush()?;
        st.approvals.rules = rules;
        st.profile_version = version;
        self.issue_profiles(st)
    }

    /// Stores a draft a branch sent up, durably. `Ok(false)`: HQ held it already (a
    /// resend), nothing written. A different draft under the same id is refused.
    pub fn put_draft(&self, st: &mut State, up: DraftUp, now_unix: u64) -> Result<bool> {
        let k = (up.branch, up.id);
        if let Some(held) = st.approvals.items.get(&k) {
            return if held.draft == up { Ok(false) } else { Err(StoreError::DraftConflict { branch: up.branch, id: up.id }) };
        }
        let waiting = st.approvals.items.iter().filter(|((b, _), it)| *b == up.branch && it.decision.is_none()).count();
        if waiting >= DRAFTS_WAITING_MAX {
            return Err(StoreError::TooManyDrafts { branch: up.branch, max: DRAFTS_WAITING_MAX });
        }
        let item = ApprovalItem { draft: up, received_unix: now_unix, decision: None, posted_seq: None };
        self.tree.insert(item_key(&k.0, k.1), record::seal(&item))?;
        self.flush()?;
        st.approvals.items.insert(k, item);
        Ok(true)
    }

    /// Approves or refuses a draft and enqueues the decision on the branch's down
    /// channel, in one write. Decided once: a second decision is refused.
    #[allow(clippy::too_many_arguments)]
    pub fn decide_approval(
        &self,
        st: &mut State,
        branch: &BranchCode,
        id: u64,
        approved: bool,
        by: &str,
        note: &str,
        now_unix: u64,
    ) -> Result<ApprovalDecision> {
        let item = st.approvals.items.get(&(*branch, id)).cloned().ok_or(StoreError::NoDraft { branch: *branch, id })?;
        if let Some(d) = &item.decision {
            return Err(StoreError::DraftDecided { branch: *branch, id, approved: d.approved });
        }
        let by_code = OperatorId::new(by)?;
        let body = DownBody::Approval { draft_id: id, approved, by: by_code, note: note.to_string() };
        let mut batch = sled::Batch::default();
        let change = self.stage_down(st, branch, vec![body], now_unix, &mut batch)?;
        let decision =
            ApprovalDecision { approved, by: by.to_string(), note: note.to_string(), at_unix: now_unix, down_seq: change.last_seq() };
        let item = ApprovalItem { decision: Some(decision.clone()), ..item };
        batch.insert(item_key(branch, id), record::seal(&item));
        self.tree.apply_batch(batch)?;
        self.flush()?;
        change.install(st);
        st.approvals.items.insert((*branch, id), item);
        Ok(decision)
    }

    /// The apply's part: approvals used by documents of this batch, into its commit write.
    pub(crate) fn stage_approvals_used(&self, st: &State, used: &[(BranchCode, u64, u64)], batch: &mut sled::Batch) -> Vec<ApprovalItem> {
        let mut out = Vec::new();
        for (branch, id, seq) in used {
            if let Some(item) = st.approvals.items.get(&(*branch, *id)) {
                let item = ApprovalItem { posted_seq: Some(*seq), ..item.clone() };
                batch.insert(item_key(branch, *id), record::seal(&item));
                out.push(item);
            }
        }
        out
    }
}
