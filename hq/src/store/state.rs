//! The in-memory mirror of HQ's durable state, and the lookups reports make over it.
//!
//! Changed only by the store after the write that backs a change is durable; must not
//! touch sled.

use std::collections::BTreeMap;

use protocol::books::{Books, Position};
use protocol::codes::{BranchCode, PartyCode, ProductCode, WarehouseCode};
use protocol::decimal_serde::Dec;
use protocol::profile::{Product, ProfileSource};

use super::records::{BranchRecord, Rejection};

/// In-memory mirror of the durable state.
#[derive(Default)]
pub struct State {
    pub branches: BTreeMap<BranchCode, BranchRecord>,
    pub products: BTreeMap<ProductCode, Product>,
    pub credit_limits: BTreeMap<PartyCode, Dec>,
    /// Customers and suppliers (往来单位), sent to every branch with its profile.
    pub parties: protocol::parties::Parties,
    /// Branches' scopes as HQ set them (`hq scope set`); a branch without one has its
    /// warehouses and every other code (`protocol::profile::default_scope`).
    pub scopes: BTreeMap<BranchCode, protocol::scope::Scope>,
    /// Each branch's books, computed by the same posting code the branch ran. Rebuilt at
    /// start by replaying the stored journals; the journals are the truth.
    pub books: BTreeMap<BranchCode, Books>,
    pub profile_version: u64,
    pub recent_rejections: BTreeMap<BranchCode, Vec<Rejection>>,
    pub last_seen_unix: BTreeMap<BranchCode, u64>,
    /// Refusals of connections that never said who they are.
    pub anonymous_rejections: u64,
}

impl State {
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
        })
    }
}

/// Consolidated position lookups for reports.
pub fn position(st: &State, w: &WarehouseCode, p: &ProductCode) -> Position {
    st.books.values().map(|b| b.position(&(*w, *p))).find(|p| !p.is_zero()).unwrap_or_default()
}

/// All branches' books added together, for consolidated reports.
pub fn consolidated(st: &State) -> Books {
    let mut all = Books::default();
    for b in st.books.values() {
        all.absorb(b);
    }
    all
}
