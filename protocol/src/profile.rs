//! What HQ tells a branch about itself: its scope (管辖范围) over the eight range kinds,
//! the product catalog (with category codes), customers and suppliers, credit limits —
//! one versioned profile. Master data is edited by HQ only; branches receive it with each
//! sync, and every document names the version it was posted under.
//!
//! Also the scope check a posting runs (`scope_check`): which codes a document touches
//! per kind (`document_codes`) and whether the branch's (and the person's) scope allows
//! them. Pure; must not touch storage or know how HQ keeps versions.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::codes::{BranchCode, ProductCode, WarehouseCode};
use crate::document::Document;
use crate::parties::{Parties, PartyRole};
use crate::people::{check_document, DocumentCodes, Person, TooManyCodes};
use crate::scope::{OutOfScope, Pattern, Rule, Scope, ScopeCode, ScopeKind, ScopeOf, Whose};

/// One product of the HQ catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Product {
    pub name: String,
    #[serde(default)]
    pub unit: String,
    /// Shelf price at the till (零售价), if HQ set one.
    #[serde(default, with = "crate::decimal_serde::option")]
    pub retail_price: Option<rust_decimal::Decimal>,
    /// Preset selling prices (预设售价 1–4: e.g. wholesale, dealer, member, special); a
    /// sale line may name a level instead of a price.
    #[serde(default)]
    pub prices: Vec<crate::decimal_serde::Dec>,
    /// Product category (商品类别, e.g. `01`): what scope's category rule runs over.
    #[serde(default)]
    pub category: Option<ScopeCode>,
}

/// Why a product has no catalog price for a line that gave none.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PriceError {
    /// The line asked for a preset level the product does not carry (levels count from 1).
    #[error("has no preset price {level} (it has {levels})")]
    NoPresetPrice { level: u8, levels: usize },
    /// The line asked for the shelf price and HQ set none.
    #[error("has no retail price; give unit_price")]
    NoRetailPrice,
}

impl Product {
    /// The price a line without one takes: preset `level` 1-4, or the retail price when no
    /// level is named. The error reads after the product's code ("XYZ has no ...").
    ///
    /// ```
    /// use protocol::profile::{PriceError, Product};
    /// use protocol::decimal_serde::Dec;
    /// use protocol::Decimal;
    /// let p = Product { name: "tea".into(), unit: "box".into(), retail_price: None, prices: vec![Dec(Decimal::new(1250, 2))], category: None };
    /// assert_eq!(p.price(Some(1)), Ok(Decimal::new(1250, 2)));
    /// assert_eq!(p.price(Some(2)), Err(PriceError::NoPresetPrice { level: 2, levels: 1 }));
    /// assert_eq!(p.price(Some(0)), Err(PriceError::NoPresetPrice { level: 0, levels: 1 }));
    /// assert_eq!(p.price(None), Err(PriceError::NoRetailPrice));
    /// ```
    pub fn price(&self, level: Option<u8>) -> Result<rust_decimal::Decimal, PriceError> {
        match level {
            // Level 0 wraps to an index no product has, so it is refused like any other.
            Some(n) => self
                .prices
                .get(usize::from(n).wrapping_sub(1))
                .map(|d| d.0)
                .ok_or(PriceError::NoPresetPrice { level: n, levels: self.prices.len() }),
            None => self.retail_price.ok_or(PriceError::NoRetailPrice),
        }
    }
}

/// Most preset price levels a product carries.
pub const PRICE_LEVELS_MAX: usize = 4;

impl Product {
    /// The one text rule (`protocol::text`) over the name and unit, which receipts and
    /// reports print.
    pub fn check_text(&self) -> Result<(), crate::text::TextError> {
        crate::text::check("product name", &self.name)?;
        crate::text::check("product unit", &self.unit)
    }
}

/// A branch's scope and the catalog, versioned by HQ.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchProfile {
    pub branch: BranchCode,
    pub name: String,
    /// Warehouses this branch may post to.
    pub warehouses: BTreeSet<WarehouseCode>,
    pub products: BTreeMap<ProductCode, Product>,
    /// Customers' credit limits (信用额度); a customer without one has no limit.
    #[serde(default)]
    pub credit_limits: BTreeMap<crate::codes::PartyCode, crate::decimal_serde::Dec>,
    /// Grows whenever HQ changes branches or products; a branch that reports an older
    /// version in its hello gets the new profile in the resume message.
    pub version: u64,
    /// The branch's scope over the eight kinds, once HQ set one (`hq scope set`). `None`:
    /// the branch's warehouses, and every code of the other kinds (see [`Self::scope`]).
    #[serde(default)]
    pub scope: Option<Scope>,
    /// Customers and suppliers (往来单位); tells a loan's counterparty's role.
    #[serde(default)]
    pub parties: Parties,
    /// The branch's people with their password hashes, so that they can sign in at the
    /// branch while it is offline. Never served over the branch's HTTP API.
    #[serde(default)]
    pub people: Vec<PersonEntry>,
    /// Which documents need HQ's approval before they may post (`protocol::approval`);
    /// judged against the version a document names, like the scope.
    #[serde(default)]
    pub approvals: crate::approval::ApprovalRules,
    /// How far below zero each of the branch's cash/bank accounts may go (an overdraft
    /// facility), as HQ set it; an account not named may not go below zero. Versioned
    /// with the profile, so branch and HQ refuse the same documents.
    #[serde(default)]
    pub overdrafts: BTreeMap<crate::codes::AccountCode, crate::decimal_serde::Dec>,
}

/// A person as HQ stores them and sends them to their branch: the record and the argon2id
/// PHC string of their password (`protocol::session_token::hash_password`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PersonEntry {
    pub person: crate::people::Person,
    pub password_phc: String,
}

impl BranchProfile {
    /// The scope documents are checked against: the one HQ set, or, for a branch HQ
    /// never narrowed, its warehouses and everything else.
    pub fn scope(&self) -> Scope {
        match &self.scope {
            Some(s) => s.clone(),
            None => default_scope(&self.warehouses),
        }
    }

    pub fn allows_warehouse(&self, w: &WarehouseCode) -> bool {
        match &self.scope {
            Some(s) => s.allows(ScopeKind::Warehouses, w.as_str()),
            None => self.warehouses.contains(w),
        }
    }

    /// How far below zero `account` may go (zero unless HQ allowed an overdraft).
    pub fn overdraft(&self, account: &crate::codes::AccountCode) -> rust_decimal::Decimal {
        self.overdrafts.get(account).map(|d| d.0).unwrap_or_default()
    }

    /// A customer's credit limit: the customer record's, when HQ keeps the customer as a
    /// master record, else the bare limit HQ set for the code; `None`: no limit.
    pub fn credit_limit(&self, customer: &crate::codes::PartyCode) -> Option<rust_decimal::Decimal> {
        match self.parties.get(customer) {
            Some(p) if p.role == PartyRole::Customer => p.credit_limit,
            _ => self.credit_limits.get(customer).map(|d| d.0),
        }
    }

    pub fn knows_product(&self, p: &ProductCode) -> bool {
        self.products.contains_key(p)
    }

    pub fn warehouses_text(&self) -> String {
        match &self.scope {
            Some(s) => s.rule(ScopeKind::Warehouses).describe(),
            None => self.warehouses.iter().map(|w| w.as_str()).collect::<Vec<_>>().join(", "),
        }
    }
}

/// The scope of a branch HQ never narrowed: exactly its warehouses, every code of the
/// other kinds (what branches could do before scope had eight kinds).
pub fn default_scope(warehouses: &BTreeSet<WarehouseCode>) -> Scope {
    let exact =
        warehouses.iter().filter_map(|w| ScopeCode::new(w.as_str()).ok()).map(Pattern::Exact).take(crate::scope::SCOPE_PATTERNS_MAX);
    Scope::all().with(ScopeKind::Warehouses, Rule::new(exact.collect()).expect("taken at most the bound"))
}

/// Which role a document's counterparty plays: fixed by the type, or, for loans (either
/// way round), the party's record; an unknown party of a loan counts as a customer.
fn counterparty_kind(doc: &Document, parties: &Parties) -> Option<ScopeKind> {
    let c = doc.header.counterparty.as_ref()?;
    match doc.header.doc_type.counterparty_role()? {
        "supplier" => Some(ScopeKind::Suppliers),
        "customer" | "dealer" => Some(ScopeKind::Customers),
        _ => Some(match parties.get(c).map(|p| p.role) {
            Some(PartyRole::Supplier) => ScopeKind::Suppliers,
            _ => ScopeKind::Customers,
        }),
    }
}

/// The codes `doc` touches, per kind: its warehouses, its products' categories (from the
/// profile's catalog; a product without a category touches none), its counterparty as
/// customer or supplier, its operator (employees), its cash/bank accounts, and its
/// expense or income type (`ext.category` of an expense or other-income document).
pub fn document_codes(doc: &Document, profile: &BranchProfile) -> Result<DocumentCodes, TooManyCodes> {
    use crate::document::DocType;
    let (h, mut codes) = (&doc.header, DocumentCodes::new());
    for w in std::iter::once(&h.warehouse).chain(h.ext.to_warehouse.as_ref()) {
        codes.touch(ScopeKind::Warehouses, w.as_str())?;
    }
    for line in &doc.lines {
        if let Some(cat) = profile.products.get(&line.product).and_then(|p| p.category.as_ref()) {
            codes.touch(ScopeKind::Categories, cat.as_str())?;
        }
    }
    if let (Some(kind), Some(c)) = (counterparty_kind(doc, &profile.parties), h.counterparty.as_ref()) {
        codes.touch(kind, c.as_str())?;
    }
    codes.touch(ScopeKind::Employees, h.operator.as_str())?;
    for a in h.ext.account.iter().chain(h.ext.to_account.as_ref()) {
        codes.touch(ScopeKind::Accounts, a.as_str())?;
    }
    match (h.doc_type, &h.ext.category) {
        (DocType::Expense, Some(c)) => codes.touch(ScopeKind::Expenses, c)?,
        (DocType::OtherIncome, Some(c)) => codes.touch(ScopeKind::Incomes, c)?,
        _ => {}
    }
    Ok(codes)
}

/// Why a document is outside scope.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ScopeRefusal {
    #[error(transparent)]
    Outside(#[from] OutOfScope),
    #[error(transparent)]
    TooManyCodes(#[from] TooManyCodes),
}

/// The scope check a posting runs: every code `doc` touches must be inside the branch's
/// scope and, when a person is given (the signed-in operator), inside theirs; the
/// refusal names the rule (`customer 310-0042 is outside SH's customers 200*; …`).
pub fn scope_check(doc: &Document, profile: &BranchProfile, person: Option<&Person>) -> Result<(), ScopeRefusal> {
    let codes = document_codes(doc, profile)?;
    let branch_scope = profile.scope();
    let branch_whose = Whose::Branch(profile.branch);
    let all = Scope::all();
    let person_whose = person.map_or(Whose::Branch(profile.branch), Person::whose);
    let person_scope = person.map_or(&all, |p| &p.scope);
    check_document(&codes, ScopeOf { whose: &branch_whose, scope: &branch_scope }, ScopeOf { whose: &person_whose, scope: person_scope })?;
    Ok(())
}

/// HQ's parts of a branch's profile, borrowed from wherever HQ keeps them, and the two
/// profiles it builds from them: the whole one it sends, and the one posting checks a
/// batch against. Here, next to [`BranchProfile`], because what the posting view may
/// leave out is a rule of `books::post` (it asks the profile only about warehouses, the
/// products a document names, and credit limits), not of HQ's storage.
#[derive(Clone, Copy, Debug)]
pub struct ProfileSource<'a> {
    pub branch: BranchCode,
    pub name: &'a str,
    pub warehouses: &'a BTreeSet<WarehouseCode>,
    pub products: &'a BTreeMap<ProductCode, Product>,
    pub credit_limits: &'a BTreeMap<crate::codes::PartyCode, crate::decimal_serde::Dec>,
    pub version: u64,
    pub scope: Option<&'a Scope>,
    pub parties: &'a Parties,
    pub approvals: &'a crate::approval::ApprovalRules,
    /// The branch's cash/bank overdraft allowances.
    pub overdrafts: &'a BTreeMap<crate::codes::AccountCode, crate::decimal_serde::Dec>,
}

impl ProfileSource<'_> {
    /// The profile HQ sends a branch: its scope plus the whole catalog.
    pub fn whole(&self) -> BranchProfile {
        self.with_parts(self.products.clone(), self.parties.clone())
    }

    /// The profile `books::post` checks `docs` against: the branch's scope and the part
    /// of the catalog the documents name. Posting only asks whether each line's product
    /// is in the catalog, so this answers exactly as the whole catalog would, without
    /// cloning every product (a name, a unit, a price list each) for every batch.
    pub fn for_posting<'d>(&self, docs: impl IntoIterator<Item = &'d crate::document::Document>) -> BranchProfile {
        let (mut products, mut parties) = (BTreeMap::new(), Parties::new());
        for doc in docs {
            for line in &doc.lines {
                if let std::collections::btree_map::Entry::Vacant(e) = products.entry(line.product) {
                    if let Some(p) = self.products.get(&line.product) {
                        e.insert(p.clone());
                    }
                }
            }
            // Posting asks the parties only for a counterparty's role.
            if let Some(p) = doc.header.counterparty.as_ref().and_then(|c| self.parties.get(c)) {
                if parties.get(&p.code).is_none() {
                    // Records from a valid directory, each code once: cannot be refused.
                    let _ = parties.insert(p.clone());
                }
            }
        }
        self.with_parts(products, parties)
    }

    fn with_parts(&self, products: BTreeMap<ProductCode, Product>, parties: Parties) -> BranchProfile {
        BranchProfile {
            branch: self.branch,
            name: self.name.to_string(),
            warehouses: self.warehouses.clone(),
            products,
            credit_limits: self.credit_limits.clone(),
            version: self.version,
            scope: self.scope.cloned(),
            parties,
            people: Vec::new(),
            approvals: self.approvals.clone(),
            overdrafts: self.overdrafts.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::books::{post, Books, PostContext};
    use crate::document::DocType;
    use crate::testkit::sample_doc_lines;

    #[test]
    fn the_posting_view_gives_the_verdicts_of_the_whole_profile() {
        let product = |c: &str| {
            (
                ProductCode::new(c).expect("code"),
                Product { name: c.into(), unit: String::new(), retail_price: None, prices: Vec::new(), category: None },
            )
        };
        let products: BTreeMap<_, _> = ["P0000", "X0001", "X0002"].into_iter().map(product).collect();
        let warehouses = BTreeSet::from([WarehouseCode::new("SH01").expect("warehouse")]);
        let credit_limits = BTreeMap::new();
        let source = ProfileSource {
            branch: BranchCode::new("SH").expect("code"),
            name: "Shanghai",
            warehouses: &warehouses,
            products: &products,
            credit_limits: &credit_limits,
            version: 7,
            scope: None,
            parties: &Parties::new(),
            approvals: &Default::default(),
            overdrafts: &BTreeMap::new(),
        };
        let docs = [
            sample_doc_lines("SH", "SH01", DocType::StockGain, 1, 1),
            sample_doc_lines("SH", "SH01", DocType::StockGain, 2, 2),
            sample_doc_lines("SH", "HB01", DocType::StockGain, 3, 1),
        ];
        let (whole, view) = (source.whole(), source.for_posting(&docs));
        assert_eq!(whole.products.len(), 3);
        assert!(view.products.len() < whole.products.len(), "only what the documents name");
        assert_eq!((view.version, &view.warehouses), (whole.version, &whole.warehouses));
        for doc in &docs {
            let verdict = |p: &BranchProfile| post(&Books::default(), doc, PostContext::under(p)).map(|_| ()).map_err(|e| e.to_string());
            assert_eq!(verdict(&view), verdict(&whole), "{}", doc.header.number);
        }
    }
}
