//! Administrative writes: branches, enrollment tokens, products, credit limits, cash/bank
//! overdraft allowances, and the profile version every one of them moves.
//!
//! Each change is one sled write and a flush before memory follows. Must not touch the
//! journal or the books.

use std::collections::BTreeSet;

use protocol::codes::{BranchCode, PartyCode, ProductCode, WarehouseCode};
use protocol::decimal_serde::Dec;
use protocol::journal::ChainHead;
use protocol::profile::{BranchProfile, Product};
use protocol::record;
use protocol::token::{secret_hash, TokenGrant, TOKEN_SECRET_BYTES};
use protocol::{Decimal, VerifyingKey};

use super::error::{EnrollError, Result, StoreError};
use super::keys::{branch_key, key, open_rec, PROFILE_VERSION};
use super::records::{BranchRecord, TokenRecord};
use super::state::State;
use super::Store;

impl Store {
    pub(crate) fn bump_profile(&self, st: &State, batch: &mut sled::Batch) -> u64 {
        let v = st.profile_version + 1;
        batch.insert(key(b'm', &[PROFILE_VERSION]), record::seal(&v));
        v
    }

    /// Adds a branch and returns the secret of a one-time enrollment token.
    pub fn add_branch(
        &self,
        st: &mut State,
        code: BranchCode,
        name: String,
        warehouses: BTreeSet<WarehouseCode>,
        now_unix: u64,
        ttl_secs: u64,
    ) -> Result<[u8; TOKEN_SECRET_BYTES]> {
        if st.branches.contains_key(&code) {
            return Err(StoreError::BranchExists(code));
        }
        if warehouses.is_empty() {
            return Err(StoreError::NoWarehouse(code));
        }
        protocol::text::check("branch name", &name)?;
        for (other, rec) in &st.branches {
            if let Some(w) = rec.warehouses.intersection(&warehouses).next() {
                return Err(StoreError::WarehouseTaken { warehouse: *w, owner: *other });
            }
        }
        let rec = BranchRecord {
            code,
            name,
            warehouses,
            key: None,
            head: ChainHead::EMPTY,
            docs_applied: 0,
            docs_quarantined: 0,
            rejections: 0,
            enrolled_at_unix: None,
            last_applied_unix: None,
        };
        let mut batch = sled::Batch::default();
        batch.insert(branch_key(&code), record::seal(&rec));
        let secret = token_into(&mut batch, &code, now_unix, ttl_secs);
        let version = self.bump_profile(st, &mut batch);
        self.tree.apply_batch(batch)?;
        self.flush()?;
        st.branches.insert(code, rec);
        st.profile_version = version;
        self.issue_profiles(st)?;
        Ok(secret)
    }

    /// Issues a fresh token for an existing branch (a reinstalled store). If the branch
    /// has an enrolled key it is revoked in the same write, explicitly and logged: a new
    /// token must not let a second key extend the chain while the first still syncs.
    /// Returns the secret and the revoked key, if any.
    pub fn new_token(
        &self,
        st: &mut State,
        code: &BranchCode,
        now_unix: u64,
        ttl_secs: u64,
    ) -> Result<([u8; TOKEN_SECRET_BYTES], Option<[u8; 32]>)> {
        if !st.branches.contains_key(code) {
            return Err(StoreError::NoBranch(*code));
        }
        let mut batch = sled::Batch::default();
        let revoked = self.revoke_into(st, code, "a new enrollment token was issued", now_unix, &mut batch)?;
        let secret = token_into(&mut batch, code, now_unix, ttl_secs);
        self.tree.apply_batch(batch)?;
        self.flush()?;
        self.revoked_in_memory(st, code, revoked.as_ref());
        if let Some((old, _)) = &revoked {
            tracing::warn!(branch = %code, revoked_key = %protocol::hex::encode(old), "new enrollment token issued: the branch's enrolled key is revoked");
        }
        Ok((secret, revoked.map(|(k, _)| k)))
    }

    pub fn add_product(&self, st: &mut State, code: ProductCode, product: Product) -> Result<()> {
        self.add_products(st, vec![(code, product)]).map(|_| ())
    }

    /// Adds or updates products in one write and one profile version: an import of a
    /// whole catalog is one change for the branches. Returns how many were new.
    pub fn add_products(&self, st: &mut State, products: Vec<(ProductCode, Product)>) -> Result<usize> {
        for (_, product) in &products {
            product.check_text()?;
        }
        let mut batch = sled::Batch::default();
        for (code, product) in &products {
            batch.insert(key(b'p', &[code.as_str().as_bytes()]), record::seal(product));
        }
        let version = self.bump_profile(st, &mut batch);
        self.tree.apply_batch(batch)?;
        self.flush()?;
        let before = st.products.len();
        st.products.extend(products);
        st.profile_version = version;
        self.issue_profiles(st)?;
        Ok(st.products.len() - before)
    }

    /// Sets (or, with `None`, removes) a customer's credit limit; branches get it with
    /// their next sync and check credit sales against it.
    pub fn set_credit_limit(&self, st: &mut State, customer: PartyCode, limit: Option<Decimal>) -> Result<()> {
        let mut batch = sled::Batch::default();
        let k = key(b'c', &[customer.as_str().as_bytes()]);
        match limit {
            Some(l) => batch.insert(k, record::seal(&Dec(l))),
            None => batch.remove(k),
        }
        let version = self.bump_profile(st, &mut batch);
        self.tree.apply_batch(batch)?;
        self.flush()?;
        match limit {
            Some(l) => st.credit_limits.insert(customer, Dec(l)),
            None => st.credit_limits.remove(&customer),
        };
        st.profile_version = version;
        self.issue_profiles(st)
    }

    /// Sets (or, with `None`, removes) how far below zero `branch`'s cash/bank `account`
    /// may go; the branch gets it with its next profile, and both sides refuse a
    /// document that would take the account further down. Key `o` branch 0 account.
    pub fn set_overdraft(
        &self,
        st: &mut State,
        branch: BranchCode,
        account: protocol::codes::AccountCode,
        allow: Option<Decimal>,
    ) -> Result<()> {
        let mut batch = sled::Batch::default();
        let k = key(b'o', &[branch.as_str().as_bytes(), account.as_str().as_bytes()]);
        match allow {
            Some(a) => batch.insert(k, record::seal(&Dec(a))),
            None => batch.remove(k),
        }
        let version = self.bump_profile(st, &mut batch);
        self.tree.apply_batch(batch)?;
        self.flush()?;
        let mine = st.overdrafts.entry(branch).or_default();
        match allow {
            Some(a) => mine.insert(account, Dec(a)),
            None => mine.remove(&account),
        };
        st.profile_version = version;
        self.issue_profiles(st)
    }

    /// Redeems a token for `branch` with its public key. Refusals carry a reason a
    /// technician can act on.
    pub fn enroll(
        &self,
        st: &mut State,
        branch: &BranchCode,
        secret: &[u8; TOKEN_SECRET_BYTES],
        branch_key_bytes: [u8; 32],
        now_unix: u64,
    ) -> Result<BranchProfile, EnrollError> {
        let tkey = key(b't', &[&secret_hash(secret)]);
        let tok: TokenRecord = match self.tree.get(&tkey).map_err(StoreError::from)? {
            Some(v) => open_rec(&tkey, &v)?,
            None => return Err(EnrollError::UnknownToken),
        };
        // Expiry and one-time use are decided in the pure core, with HQ's clock passed in.
        TokenGrant { branch: tok.branch, expires_unix: tok.expires_unix, used: tok.used }.redeem(branch, now_unix)?;
        VerifyingKey::from_bytes(&branch_key_bytes).map_err(|_| EnrollError::BadKey)?;
        let mut rec = st.branches.get(branch).cloned().ok_or(EnrollError::BranchRemoved)?;
        // A key revoked once stays revoked: a branch re-enrolls with a fresh key.
        if st.keys.lookup(&branch_key_bytes).is_some() {
            return Err(EnrollError::KeyKnown);
        }
        let mut batch = sled::Batch::default();
        // A token is only issued with the old key revoked (`new_token`); should one be
        // enrolled anyway, it is revoked here rather than left valid beside the new one.
        let revoked = self.revoke_into(st, branch, "the branch enrolled a new key", now_unix, &mut batch)?;
        rec.key = Some(branch_key_bytes);
        rec.enrolled_at_unix = Some(now_unix);
        batch.insert(tkey, record::seal(&TokenRecord { used: true, ..tok }));
        batch.insert(branch_key(branch), record::seal(&rec));
        self.tree.apply_batch(batch).map_err(StoreError::from)?;
        self.flush()?;
        self.revoked_in_memory(st, branch, revoked.as_ref());
        st.branches.insert(*branch, rec);
        st.keys.set_enrolled(branch_key_bytes, *branch);
        Ok(super::profile::profile_of(st, branch).expect("branch just stored"))
    }
}

fn token_into(batch: &mut sled::Batch, code: &BranchCode, now_unix: u64, ttl_secs: u64) -> [u8; TOKEN_SECRET_BYTES] {
    let secret: [u8; TOKEN_SECRET_BYTES] = rand::random();
    let tok = TokenRecord { branch: *code, expires_unix: now_unix + ttl_secs, used: false };
    batch.insert(key(b't', &[&secret_hash(&secret)]), record::seal(&tok));
    secret
}

/// The branch and account of an overdraft record's key (`o` branch 0 account).
pub(super) fn overdraft_key_parts(k: &[u8]) -> Result<(BranchCode, protocol::codes::AccountCode)> {
    let text = String::from_utf8_lossy(k.get(1..).unwrap_or_default()).into_owned();
    let (branch, account) = text.split_once('\0').ok_or_else(|| StoreError::Damaged(format!("overdraft key {text:?} names no account")))?;
    Ok((BranchCode::new(branch)?, protocol::codes::AccountCode::parse(account)?))
}
