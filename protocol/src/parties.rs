//! Customers and suppliers as master records (往来单位): code, name, category, optional
//! credit limit (信用额度), region and notes, and `Parties`, the directory HQ keeps and
//! sends down.
//!
//! Codes are hierarchical (`province(2) + office(2) + dealer(2)`, e.g. `200102`) and a
//! supplier's code never equals a customer's (seed 003); the directory enforces that. The
//! category code is what scope's customer/supplier rules and reports group by.
//!
//! This module holds the records and their validation only. It must not post, know the
//! books' balances (a credit check takes the balance as an argument) or touch storage.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::codes::PartyCode;
use crate::scope::ScopeCode;

/// Longest name, in bytes (a Chinese company name is well under this).
pub const PARTY_NAME_BYTES_MAX: usize = 200;
/// Longest region or notes text, in bytes.
pub const PARTY_NOTES_BYTES_MAX: usize = 1_000;
/// Most parties in one directory: bounds what HQ sends down and a branch holds.
pub const PARTIES_MAX: usize = 100_000;

/// Customer or supplier.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PartyRole {
    Customer,
    Supplier,
}

impl PartyRole {
    pub fn name(self) -> &'static str {
        match self {
            PartyRole::Customer => "customer",
            PartyRole::Supplier => "supplier",
        }
    }
}

/// Why a party record or a directory change was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PartyError {
    #[error("{role} {code} needs a name")]
    NoName { role: &'static str, code: PartyCode },
    #[error("{role} {code}: {field} is {len} bytes, at most {max}")]
    TooLong { role: &'static str, code: PartyCode, field: &'static str, len: usize, max: usize },
    #[error("{role} {code}: a credit limit cannot be negative ({limit})")]
    NegativeCreditLimit { role: &'static str, code: PartyCode, limit: Decimal },
    #[error("suppliers have no credit limit here ({code}); limits are what we extend to customers")]
    SupplierCreditLimit { code: PartyCode },
    #[error("code {code} is already a {existing}; supplier and customer codes never collide")]
    CodeTaken { code: PartyCode, existing: &'static str },
    #[error("{role} {code} already exists; use replace to change it")]
    Exists { role: &'static str, code: PartyCode },
    #[error("no {role} {code}")]
    Unknown { role: &'static str, code: PartyCode },
    #[error("{role} {code}: {source}")]
    Text { role: &'static str, code: PartyCode, source: crate::text::TextError },
    #[error("the directory holds at most {max} parties")]
    Full { max: usize },
    #[error("customer {code} would owe {balance}, over the credit limit {limit}")]
    OverCreditLimit { code: PartyCode, balance: Decimal, limit: Decimal },
}

/// One customer or supplier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Party {
    pub code: PartyCode,
    pub role: PartyRole,
    pub name: String,
    /// Category (customer class / supplier class), e.g. `20` for Shanghai dealers.
    pub category: Option<ScopeCode>,
    /// Customers only: the most they may owe us; none means no limit.
    #[serde(default, with = "crate::decimal_serde::option")]
    pub credit_limit: Option<Decimal>,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub notes: String,
}

impl Party {
    /// Checks the record's own rules (not the directory's).
    pub fn validate(&self) -> Result<(), PartyError> {
        let (role, code) = (self.role.name(), self.code);
        if self.name.trim().is_empty() {
            return Err(PartyError::NoName { role, code });
        }
        for (field, text, max) in [
            ("name", &self.name, PARTY_NAME_BYTES_MAX),
            ("region", &self.region, PARTY_NOTES_BYTES_MAX),
            ("notes", &self.notes, PARTY_NOTES_BYTES_MAX),
        ] {
            if text.len() > max {
                return Err(PartyError::TooLong { role, code, field, len: text.len(), max });
            }
            crate::text::check(field, text).map_err(|source| PartyError::Text { role, code, source })?;
        }
        match (self.role, self.credit_limit) {
            (PartyRole::Supplier, Some(_)) => Err(PartyError::SupplierCreditLimit { code }),
            (_, Some(limit)) if limit.is_sign_negative() && !limit.is_zero() => Err(PartyError::NegativeCreditLimit { role, code, limit }),
            _ => Ok(()),
        }
    }
}

/// All customers and suppliers, by code. Every record in it is valid and no code is both.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Party>", into = "Vec<Party>")]
pub struct Parties {
    by_code: BTreeMap<PartyCode, Party>,
}

impl Parties {
    pub fn new() -> Parties {
        Parties::default()
    }

    pub fn len(&self) -> usize {
        self.by_code.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_code.is_empty()
    }

    pub fn get(&self, code: &PartyCode) -> Option<&Party> {
        self.by_code.get(code)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Party> {
        self.by_code.values()
    }

    /// The party with this code in this role, or why not.
    pub fn lookup(&self, role: PartyRole, code: &PartyCode) -> Result<&Party, PartyError> {
        match self.by_code.get(code) {
            Some(p) if p.role == role => Ok(p),
            Some(p) => Err(PartyError::CodeTaken { code: *code, existing: p.role.name() }),
            None => Err(PartyError::Unknown { role: role.name(), code: *code }),
        }
    }

    /// Adds a new party; refuses an existing code of either role.
    pub fn insert(&mut self, party: Party) -> Result<(), PartyError> {
        party.validate()?;
        if let Some(existing) = self.by_code.get(&party.code) {
            return Err(if existing.role == party.role {
                PartyError::Exists { role: party.role.name(), code: party.code }
            } else {
                PartyError::CodeTaken { code: party.code, existing: existing.role.name() }
            });
        }
        if self.by_code.len() >= PARTIES_MAX {
            return Err(PartyError::Full { max: PARTIES_MAX });
        }
        self.by_code.insert(party.code, party);
        Ok(())
    }

    /// Changes an existing party; its role cannot change (a code is one or the other).
    pub fn replace(&mut self, party: Party) -> Result<Party, PartyError> {
        party.validate()?;
        let existing = self.lookup(party.role, &party.code)?;
        debug_assert_eq!(existing.role, party.role);
        Ok(self.by_code.insert(party.code, party).expect("lookup just found this code"))
    }

    /// Would a customer owing `balance_after` be within their credit limit? The caller
    /// computes the balance from the books; no limit means any balance is fine.
    pub fn check_credit(&self, code: &PartyCode, balance_after: Decimal) -> Result<(), PartyError> {
        let customer = self.lookup(PartyRole::Customer, code)?;
        match customer.credit_limit {
            Some(limit) if balance_after > limit => Err(PartyError::OverCreditLimit { code: *code, balance: balance_after, limit }),
            _ => Ok(()),
        }
    }
}

impl TryFrom<Vec<Party>> for Parties {
    type Error = PartyError;
    fn try_from(list: Vec<Party>) -> Result<Parties, PartyError> {
        let mut parties = Parties::new();
        for p in list {
            parties.insert(p)?;
        }
        Ok(parties)
    }
}

impl From<Parties> for Vec<Party> {
    fn from(p: Parties) -> Vec<Party> {
        p.by_code.into_values().collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

    use super::*;

    fn party(code: &str, role: PartyRole) -> Party {
        Party {
            code: PartyCode::new(code).expect("code"),
            role,
            name: format!("party {code}"),
            category: Some(ScopeCode::new(&code[..2]).expect("category")),
            credit_limit: None,
            region: "上海".into(),
            notes: String::new(),
        }
    }

    #[test]
    fn codes_never_collide_across_roles() {
        let mut d = Parties::new();
        d.insert(party("200102", PartyRole::Customer)).expect("new");
        let err = d.insert(party("200102", PartyRole::Supplier)).expect_err("taken");
        assert_eq!(err.to_string(), "code 200102 is already a customer; supplier and customer codes never collide");
        assert!(matches!(d.insert(party("200102", PartyRole::Customer)), Err(PartyError::Exists { .. })));
        assert!(matches!(d.lookup(PartyRole::Supplier, &PartyCode::new("200102").expect("code")), Err(PartyError::CodeTaken { .. })));
        assert!(matches!(d.replace(party("900001", PartyRole::Supplier)), Err(PartyError::Unknown { .. })));
    }

    #[test]
    fn records_are_validated() {
        let mut p = party("200102", PartyRole::Customer);
        p.credit_limit = Some(dec!(-1));
        assert!(matches!(p.validate(), Err(PartyError::NegativeCreditLimit { .. })));
        let mut s = party("900001", PartyRole::Supplier);
        s.credit_limit = Some(dec!(5));
        assert!(matches!(s.validate(), Err(PartyError::SupplierCreditLimit { .. })));
        let mut n = party("200103", PartyRole::Customer);
        n.name = " ".into();
        assert!(matches!(n.validate(), Err(PartyError::NoName { .. })));
        n.name = "x".repeat(PARTY_NAME_BYTES_MAX + 1);
        assert!(matches!(n.validate(), Err(PartyError::TooLong { field: "name", .. })));
        n.name = "x".repeat(PARTY_NAME_BYTES_MAX);
        assert!(n.validate().is_ok());
    }

    #[test]
    fn credit_limit_check() {
        let mut d = Parties::new();
        let mut c = party("200102", PartyRole::Customer);
        c.credit_limit = Some(dec!(1000));
        d.insert(c.clone()).expect("new");
        let code = c.code;
        assert!(d.check_credit(&code, dec!(1000)).is_ok());
        assert_eq!(
            d.check_credit(&code, dec!(1000.01)).expect_err("over").to_string(),
            "customer 200102 would owe 1000.01, over the credit limit 1000"
        );
        c.credit_limit = None;
        d.replace(c).expect("lift the limit");
        assert!(d.check_credit(&code, dec!(1e9)).is_ok());
    }

    #[test]
    fn decoding_goes_through_the_rules() {
        let json = r#"[{"code":"200102","role":"Customer","name":"a","category":"20"},{"code":"200102","role":"Supplier","name":"b","category":null}]"#;
        assert!(serde_json::from_str::<Parties>(json).is_err());
        assert!(serde_json::from_str::<Parties>(r#"[{"code":"1","role":"Customer","name":"a","category":"2..0"}]"#).is_err());
    }

    proptest! {
        #[test]
        fn directory_round_trips(codes in proptest::collection::btree_set("[0-9]{6}", 0..30), limit in 0u32..100_000) {
            let mut d = Parties::new();
            for (i, c) in codes.iter().enumerate() {
                let role = if i % 3 == 0 { PartyRole::Supplier } else { PartyRole::Customer };
                let mut p = party(c, role);
                if role == PartyRole::Customer { p.credit_limit = Some(Decimal::from(limit)); }
                d.insert(p).expect("distinct codes");
            }
            let bytes = postcard::to_allocvec(&d).expect("encode");
            prop_assert_eq!(postcard::from_bytes::<Parties>(&bytes).expect("decode"), d.clone());
            let json = serde_json::to_string(&d).expect("json");
            prop_assert_eq!(serde_json::from_str::<Parties>(&json).expect("json back"), d);
        }
    }
}
