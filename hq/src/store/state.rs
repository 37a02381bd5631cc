//! The in-memory mirror of HQ's durable state, and the lookups reports make over it.
//!
//! Changed only by the store after the write that backs a change is durable; must not
//! touch sled.

use std::collections::BTreeMap;
use std::sync::Arc;

use protocol::books::{Books, Position};
use protocol::codes::{BranchCode, OperatorId, PartyCode, ProductCode, WarehouseCode};
use protocol::decimal_serde::Dec;
use protocol::profile::{PersonEntry, Product, ProfileSource};

use super::books_slot::BranchBooks;
use super::keys_index::KeyIndex;
use super::records::{BranchRecord, Rejection};

/// In-memory mirror of the durable state.
#[derive(Default)]
pub struct State {
    pub branches: BTreeMap<BranchCode, BranchRecord>,
    pub products: BTreeMap<ProductCode, Product>,
    pub credit_limits: BTreeMap<PartyCode, Dec>,
    /// Everyone who signs in, HQ's and the branches' people, by login.
    pub people: BTreeMap<OperatorId, PersonEntry>,
    /// Customers and suppliers (往来单位), sent to every branch with its profile.
    pub parties: protocol::parties::Parties,
    /// Branches' scopes as HQ set them (`hq scope set`); a branch without one has its
    /// warehouses and every other code (`protocol::profile::default_scope`).
    pub scopes: BTreeMap<BranchCode, protocol::scope::Scope>,
    /// Each branch's books, computed by the same posting code the branch ran. Rebuilt at
    /// start by replaying the stored journals; the journals are the truth. Each is its own
    /// slot (writer's copy + readers' snapshot, `books_slot`), so a branch's apply holds
    /// no state lock while it posts and waits for its flush.
    pub books: BTreeMap<BranchCode, Arc<BranchBooks>>,
    pub profile_version: u64,
    pub recent_rejections: BTreeMap<BranchCode, Vec<Rejection>>,
    pub last_seen_unix: BTreeMap<BranchCode, u64>,
    /// Refusals of connections that never said who they are.
    pub anonymous_rejections: u64,
    /// Enrolled and revoked keys → branch: who a TLS peer is.
    pub keys: KeyIndex,
    /// Per branch: the start of the current rejection-record window and the records
    /// written in it (see `rejections`), and refusals counted but not written.
    pub rejection_window: BTreeMap<BranchCode, (u64, u32)>,
    pub rejections_not_written: u64,
    /// The down channel: HQ's key, each branch's unacked queue, the review items.
    pub down: super::down::DownState,
    /// The approval rules HQ issues with every profile, and the drafts awaiting or decided.
    pub approvals: super::approvals::ApprovalState,
    /// Per branch: how far below zero each cash/bank account may go (`hq account
    /// overdraft`); sent in the branch's profile.
    pub overdrafts: BTreeMap<BranchCode, Overdrafts>,
    /// Cross-branch transfer orders and the shipments forwarded to receivers.
    pub transfers: super::transfers::TransferState,
    /// Month reopens auditors ordered (`reopens`), each used once.
    pub reopens: Vec<super::reopens::ReopenRecord>,
}

/// One branch's overdraft allowances, by cash/bank account.
pub type Overdrafts = BTreeMap<protocol::codes::AccountCode, Dec>;

/// A branch without allowances: none of its accounts may go below zero.
static NO_OVERDRAFTS: Overdrafts = BTreeMap::new();

impl State {
    /// The books slot of an enrolled branch, made on first use (`None` for a code HQ
    /// does not know, so strangers cannot make HQ allocate).
    pub fn books_slot(&mut self, branch: &BranchCode) -> Option<Arc<BranchBooks>> {
        if !self.branches.contains_key(branch) {
            return None;
        }
        Some(self.books.entry(*branch).or_default().clone())
    }

    /// Every branch's books slot, to take snapshots from after the state lock is let go.
    pub fn book_slots(&self) -> Vec<(BranchCode, Arc<BranchBooks>)> {
        self.books.iter().map(|(c, s)| (*c, s.clone())).collect()
    }

    /// What HQ holds of `branch`'s profile, borrowed: the source of the profile it sends
    /// and of the one posting checks against (`protocol::profile::ProfileSource`).
    pub fn profile_source(&self, branch: &BranchCode) -> Option<ProfileSource<'_>> {
        let rec = self.branches.get(branch)?;
        Some(ProfileSource {
            branch: rec.code,
            name: &rec.name,
            warehouses: &rec.warehouses,
            products: &self.products,
            credit_limits: &self.credit_limits,
            version: self.profile_version,
            scope: self.scopes.get(branch),
            parties: &self.parties,
            approvals: &self.approvals.rules,
            overdrafts: self.overdrafts.get(branch).unwrap_or(&NO_OVERDRAFTS),
        })
    }
}

/// Consolidated position lookups for reports.
pub fn position(st: &State, w: &WarehouseCode, p: &ProductCode) -> Position {
    st.books.values().filter_map(|s| s.snapshot()).map(|b| b.position(&(*w, *p))).find(|p| !p.is_zero()).unwrap_or_default()
}

/// Snapshots of every branch's books (each as of its own durable head), taken without
/// waiting for a write; call with the slots from [`State::book_slots`], outside the lock.
pub fn snapshots(slots: &[(BranchCode, Arc<BranchBooks>)]) -> Vec<(BranchCode, Arc<Books>)> {
    slots.iter().filter_map(|(c, s)| Some((*c, s.snapshot()?))).collect()
}

/// All branches' books added together, for consolidated reports.
pub fn consolidated(st: &State) -> Books {
    merged(&snapshots(&st.book_slots()))
}

/// Snapshots added together. With more than one branch, what the branches owe each other
/// for transfers (内部往来, 内部调拨差价) is eliminated into goods in transit
/// (`Books::eliminate_inter_branch`), so the company's statements show no intercompany
/// profit; one branch's books are shown as that branch keeps them.
pub fn merged(snaps: &[(BranchCode, Arc<Books>)]) -> Books {
    let mut all = Books::default();
    for (_, b) in snaps {
        all.absorb(b);
    }
    if snaps.len() > 1 {
        all.eliminate_inter_branch();
    }
    all
}
