//! People and roles (seeds 000 and 003): who may do what, where, and over which codes.
//!
//! Rights are per function (documents of each family, reports, master data, scope, people,
//! branches and enrollment, transfers, approvals, review of flagged documents, the till)
//! and come in four kinds: view / add / manage / approve. A role grants a fixed set of
//! rights, written once as a const table ([`ROLE_RIGHTS`]) that the README's roles table
//! is printed from. A person has roles, a home (HQ or one branch) and a scope within it.
//!
//! `authorize` answers "may this person do this here?" and `check_document` answers "may
//! this person's document touch these codes?"; both say why not in plain words. This
//! module must not know passwords, tokens, HTTP or storage: the edge signs people in and
//! asks these questions.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codes::{BranchCode, OperatorId};
use crate::document::DocType;
use crate::scope::{check_both, OutOfScope, Scope, ScopeKind, ScopeOf, Whose};

/// Most roles one person holds (there are six).
pub const PERSON_ROLES_MAX: usize = 6;
/// Longest display name, in bytes.
pub const PERSON_NAME_BYTES_MAX: usize = 100;
/// Most codes one document check holds: a document has at most `DOC_LINES_MAX` lines and
/// each line touches a few kinds.
pub const DOCUMENT_CODES_MAX: usize = 8 * crate::document::DOC_LINES_MAX;

/// The six roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    HqAuditor,
    HqAdmin,
    BranchAccountant,
    WarehouseClerk,
    Cashier,
    Technician,
}

impl Role {
    pub const ALL: [Role; 6] =
        [Role::HqAuditor, Role::HqAdmin, Role::BranchAccountant, Role::WarehouseClerk, Role::Cashier, Role::Technician];

    pub fn name(self) -> &'static str {
        match self {
            Role::HqAuditor => "HQ auditor",
            Role::HqAdmin => "HQ admin",
            Role::BranchAccountant => "branch accountant",
            Role::WarehouseClerk => "warehouse clerk",
            Role::Cashier => "cashier",
            Role::Technician => "technician",
        }
    }

    pub fn zh(self) -> &'static str {
        match self {
            Role::HqAuditor => "总部审计",
            Role::HqAdmin => "总部管理员",
            Role::BranchAccountant => "分公司会计",
            Role::WarehouseClerk => "仓管员",
            Role::Cashier => "收银员",
            Role::Technician => "技术员",
        }
    }

    /// HQ's roles are held only by people whose home is HQ.
    pub fn hq_only(self) -> bool {
        matches!(self, Role::HqAuditor | Role::HqAdmin)
    }
}

/// Families of document types, each one function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DocFamily {
    Purchasing,
    Sales,
    Retail,
    Warehouse,
    Consignment,
    Loans,
    Finance,
    Ledger,
}

impl DocFamily {
    /// Exhaustive on purpose: a new document type does not compile until it has a family.
    pub fn of(t: DocType) -> DocFamily {
        use DocType::*;
        match t {
            PurchaseReceipt | PurchaseReturn | Payment => DocFamily::Purchasing,
            Sale | SalesReturn | Receipt => DocFamily::Sales,
            Retail => DocFamily::Retail,
            TransferSamePrice | TransferChangedPrice | StockLoss | StockGain | CostAdjustment | Assembly => DocFamily::Warehouse,
            ConsignOutShip | ConsignOutSettle | ConsignOutReturn | ConsignInReceive | ConsignInSettle | ConsignInReturn => {
                DocFamily::Consignment
            }
            LendOut | LendReturn | BorrowIn | BorrowReturn => DocFamily::Loans,
            Expense | OtherIncome | FundTransfer | ReceivableIncrease | ReceivableDecrease | PayableIncrease | PayableDecrease => {
                DocFamily::Finance
            }
            Opening | ManualEntry | PeriodClose | PeriodReopen => DocFamily::Ledger,
        }
    }
}

/// What a right is over. Discriminants index [`ROLE_RIGHTS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Function {
    PurchasingDocs,
    SalesDocs,
    RetailDocs,
    WarehouseDocs,
    ConsignmentDocs,
    LoanDocs,
    FinanceDocs,
    LedgerDocs,
    Reports,
    MasterData,
    Scope,
    People,
    /// Branches, enrollment tokens and key revocation.
    Branches,
    Transfers,
    Approvals,
    /// Flagged and quarantined documents: accept or order a reversal.
    Review,
    /// Till shifts, drawer and devices.
    Till,
}

const FUNCTION_COUNT: usize = 17;

impl Function {
    pub const ALL: [Function; FUNCTION_COUNT] = [
        Function::PurchasingDocs,
        Function::SalesDocs,
        Function::RetailDocs,
        Function::WarehouseDocs,
        Function::ConsignmentDocs,
        Function::LoanDocs,
        Function::FinanceDocs,
        Function::LedgerDocs,
        Function::Reports,
        Function::MasterData,
        Function::Scope,
        Function::People,
        Function::Branches,
        Function::Transfers,
        Function::Approvals,
        Function::Review,
        Function::Till,
    ];

    /// Is it the right over one family of documents (`Function::docs` of some family)?
    pub fn is_docs(self) -> bool {
        use Function::*;
        matches!(self, PurchasingDocs | SalesDocs | RetailDocs | WarehouseDocs | ConsignmentDocs | LoanDocs | FinanceDocs | LedgerDocs)
    }

    pub fn docs(family: DocFamily) -> Function {
        match family {
            DocFamily::Purchasing => Function::PurchasingDocs,
            DocFamily::Sales => Function::SalesDocs,
            DocFamily::Retail => Function::RetailDocs,
            DocFamily::Warehouse => Function::WarehouseDocs,
            DocFamily::Consignment => Function::ConsignmentDocs,
            DocFamily::Loans => Function::LoanDocs,
            DocFamily::Finance => Function::FinanceDocs,
            DocFamily::Ledger => Function::LedgerDocs,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Function::PurchasingDocs => "purchasing documents",
            Function::SalesDocs => "sales documents",
            Function::RetailDocs => "retail documents",
            Function::WarehouseDocs => "warehouse documents",
            Function::ConsignmentDocs => "consignment documents",
            Function::LoanDocs => "borrow/lend documents",
            Function::FinanceDocs => "finance documents",
            Function::LedgerDocs => "ledger documents (opening, manual entry, close)",
            Function::Reports => "reports",
            Function::MasterData => "master data (products, customers, suppliers)",
            Function::Scope => "scope",
            Function::People => "people",
            Function::Branches => "branches and enrollment",
            Function::Transfers => "cross-branch transfers",
            Function::Approvals => "approvals",
            Function::Review => "review of flagged documents",
            Function::Till => "till",
        }
    }
}

/// The four kinds of right.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Right {
    View,
    Add,
    /// Change or reverse what exists; for review, resolve.
    Manage,
    Approve,
}

impl Right {
    pub const ALL: [Right; 4] = [Right::View, Right::Add, Right::Manage, Right::Approve];

    pub fn name(self) -> &'static str {
        match self {
            Right::View => "view",
            Right::Add => "add",
            Right::Manage => "manage",
            Right::Approve => "approve",
        }
    }

    const fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// A set of rights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rights(u8);

impl Rights {
    pub const NONE: Rights = Rights(0);
    pub const V: Rights = Rights(Right::View.bit());
    pub const VA: Rights = Rights(Right::View.bit() | Right::Add.bit());
    pub const VM: Rights = Rights(Right::View.bit() | Right::Manage.bit());
    pub const VP: Rights = Rights(Right::View.bit() | Right::Approve.bit());
    pub const VAM: Rights = Rights(Right::View.bit() | Right::Add.bit() | Right::Manage.bit());
    pub const VMP: Rights = Rights(Right::View.bit() | Right::Manage.bit() | Right::Approve.bit());
    pub const ALL: Rights = Rights(0b1111);

    pub fn has(self, right: Right) -> bool {
        self.0 & right.bit() != 0
    }

    pub fn union(self, other: Rights) -> Rights {
        Rights(self.0 | other.0)
    }
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = Right::ALL.into_iter().filter(|r| self.has(*r)).map(Right::name).collect();
        f.write_str(if names.is_empty() { "—" } else { "" })?;
        f.write_str(&names.join(", "))
    }
}

use Rights as R;

/// What each role may do: one row per role (in `Role::ALL` order), one column per
/// function (in `Function::ALL` order). HQ's auditor sees everything and decides (transfers,
/// approvals, review); HQ's admin keeps master data, scope, people and branches; a branch
/// accountant posts and reverses every family; the seed 003 clerk moves and sells goods;
/// a cashier works the till; a technician opens stores and sets up tills.
#[rustfmt::skip]
pub const ROLE_RIGHTS: [[Rights; FUNCTION_COUNT]; 6] = [
    //  purch  sales  retail wareh  consig loans  financ ledger report master scope  people branch transf approv review till
    [R::V,   R::V,  R::V,  R::V,  R::V,  R::V,  R::V,  R::V,  R::V,  R::V,   R::V,  R::V,  R::V,  R::ALL, R::VP, R::VMP, R::NONE], // HQ auditor
    [R::V,   R::V,  R::V,  R::V,  R::V,  R::V,  R::V,  R::V,  R::V,  R::VAM, R::VAM, R::VAM, R::VAM, R::V, R::V,  R::V,  R::NONE], // HQ admin
    [R::VAM, R::VAM, R::VM, R::VAM, R::VAM, R::VAM, R::VAM, R::VAM, R::V, R::VA, R::V, R::V, R::NONE, R::V, R::VA, R::V, R::V],    // branch accountant
    [R::VA,  R::VA, R::NONE, R::VA, R::VA, R::VA, R::NONE, R::NONE, R::V, R::V, R::V, R::NONE, R::NONE, R::V, R::VA, R::NONE, R::NONE], // warehouse clerk
    [R::NONE, R::NONE, R::VA, R::NONE, R::NONE, R::NONE, R::NONE, R::NONE, R::NONE, R::V, R::NONE, R::NONE, R::NONE, R::NONE, R::NONE, R::NONE, R::VA], // cashier
    [R::NONE, R::NONE, R::NONE, R::NONE, R::NONE, R::NONE, R::NONE, R::NONE, R::NONE, R::V, R::V, R::NONE, R::VAM, R::NONE, R::NONE, R::NONE, R::VM], // technician
];

/// The rights a role grants over a function.
pub fn role_rights(role: Role, function: Function) -> Rights {
    ROLE_RIGHTS[role as usize][function as usize]
}

/// The roles table in markdown, as the README shows it (generated from [`ROLE_RIGHTS`]).
pub fn roles_table_markdown() -> String {
    let mut out = String::from("| function |");
    for role in Role::ALL {
        out.push_str(&format!(" {} ({}) |", role.name(), role.zh()));
    }
    out.push_str("\n| --- |");
    out.push_str(&" --- |".repeat(Role::ALL.len()));
    for function in Function::ALL {
        out.push_str(&format!("\n| {} |", function.name()));
        for role in Role::ALL {
            out.push_str(&format!(" {} |", role_rights(role, function)));
        }
    }
    out.push('\n');
    out
}

/// Where a person works: HQ (every branch) or one branch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Home {
    Hq,
    Branch(BranchCode),
}

/// A person who signs in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Sign-in name; also the operator a posted document names.
    pub login: OperatorId,
    pub name: String,
    pub roles: Vec<Role>,
    pub home: Home,
    /// The person's own scope, within the branch's.
    pub scope: Scope,
    pub disabled: bool,
}

/// Why a person record was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PersonError {
    #[error("{login}: a name is at most {max} bytes")]
    NameTooLong { login: OperatorId, max: usize },
    #[error("{login}: at most {max} roles, each once")]
    Roles { login: OperatorId, max: usize },
    #[error("{login} works at {branch}; the {role} role is for people at HQ")]
    HqRoleAtBranch { login: OperatorId, branch: BranchCode, role: &'static str },
    #[error("{login}: {source}")]
    Text { login: OperatorId, source: crate::text::TextError },
}

impl Person {
    pub fn validate(&self) -> Result<(), PersonError> {
        let login = self.login;
        if self.name.len() > PERSON_NAME_BYTES_MAX {
            return Err(PersonError::NameTooLong { login, max: PERSON_NAME_BYTES_MAX });
        }
        crate::text::check("name", &self.name).map_err(|source| PersonError::Text { login, source })?;
        let distinct = self.roles.iter().enumerate().all(|(i, r)| !self.roles[..i].contains(r));
        if self.roles.len() > PERSON_ROLES_MAX || !distinct {
            return Err(PersonError::Roles { login, max: PERSON_ROLES_MAX });
        }
        if let (Home::Branch(branch), Some(role)) = (self.home, self.roles.iter().find(|r| r.hq_only())) {
            return Err(PersonError::HqRoleAtBranch { login, branch, role: role.name() });
        }
        Ok(())
    }

    pub fn rights(&self, function: Function) -> Rights {
        self.roles.iter().fold(Rights::NONE, |acc, role| acc.union(role_rights(*role, function)))
    }

    /// This person as scope refusals name them.
    pub fn whose(&self) -> Whose {
        Whose::Person(self.login.to_string())
    }
}

/// Why a person may not do something; said in plain words (the edge answers 403 with it).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Denied {
    #[error("{login} is disabled; ask an HQ admin")]
    Disabled { login: OperatorId },
    #[error("{login}'s roles ({roles}) do not give {} on {}", right.name(), function.name())]
    RoleLacks { login: OperatorId, roles: String, function: Function, right: Right },
    #[error("{login} works at {home}, not at {target}")]
    OtherBranch { login: OperatorId, home: BranchCode, target: BranchCode },
    #[error("{login} works at {home}; {} across all branches is for people at HQ", function.name())]
    HqOnly { login: OperatorId, home: BranchCode, function: Function },
}

/// May `person` exercise `right` on `function` for `branch` (`None`: HQ-wide, all
/// branches)? Checks, in order: the person is enabled, a role grants the right, and the
/// branch is the person's own (HQ people reach every branch).
pub fn authorize(person: &Person, function: Function, right: Right, branch: Option<BranchCode>) -> Result<(), Denied> {
    let login = person.login;
    if person.disabled {
        return Err(Denied::Disabled { login });
    }
    if !person.rights(function).has(right) {
        let roles =
            if person.roles.is_empty() { "none".to_string() } else { person.roles.iter().map(|r| r.name()).collect::<Vec<_>>().join(", ") };
        return Err(Denied::RoleLacks { login, roles, function, right });
    }
    match (person.home, branch) {
        (Home::Hq, _) => Ok(()),
        (Home::Branch(home), Some(target)) if home == target => Ok(()),
        (Home::Branch(home), Some(target)) => Err(Denied::OtherBranch { login, home, target }),
        (Home::Branch(home), None) => Err(Denied::HqOnly { login, home, function }),
    }
}

/// The codes a document touches, per kind, in the order they appear (the lead fills it
/// from a `Document`: warehouses, product categories, the counterparty, the operator or
/// handler, cash/bank accounts, expense and income types). Duplicates are kept once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DocumentCodes {
    codes: Vec<(ScopeKind, String)>,
}

/// A document names more codes than any document can (see [`DOCUMENT_CODES_MAX`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a document touches at most {max} distinct codes")]
pub struct TooManyCodes {
    pub max: usize,
}

impl DocumentCodes {
    pub fn new() -> DocumentCodes {
        DocumentCodes::default()
    }

    pub fn touch(&mut self, kind: ScopeKind, code: impl AsRef<str>) -> Result<(), TooManyCodes> {
        let code = code.as_ref();
        if self.codes.iter().any(|(k, c)| *k == kind && c == code) {
            return Ok(());
        }
        if self.codes.len() >= DOCUMENT_CODES_MAX {
            return Err(TooManyCodes { max: DOCUMENT_CODES_MAX });
        }
        self.codes.push((kind, code.to_string()));
        Ok(())
    }

    pub fn iter(&self) -> impl Iterator<Item = (ScopeKind, &str)> {
        self.codes.iter().map(|(k, c)| (*k, c.as_str()))
    }
}

/// The first code of the document outside the branch's or the person's scope.
pub fn check_document(doc_codes: &DocumentCodes, branch_scope: ScopeOf<'_>, person_scope: ScopeOf<'_>) -> Result<(), OutOfScope> {
    doc_codes.iter().try_for_each(|(kind, code)| check_both(branch_scope, person_scope, kind, code))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn code(s: &str) -> BranchCode {
        BranchCode::new(s).expect("code")
    }

    fn person(roles: &[Role], home: Home) -> Person {
        Person {
            login: OperatorId::new("li.jia").expect("login"),
            name: "李甲".into(),
            roles: roles.to_vec(),
            home,
            scope: Scope::all(),
            disabled: false,
        }
    }

    #[test]
    fn print_the_roles_table_for_the_readme() {
        let table = roles_table_markdown();
        println!("{table}");
        assert_eq!(table.lines().count(), 2 + Function::ALL.len());
        assert!(table.starts_with("| function | HQ auditor (总部审计) | HQ admin (总部管理员) | branch accountant (分公司会计) |"));
        assert!(table.contains("\n| review of flagged documents | view, manage, approve | view | view | — | — | — |"));
    }

    #[test]
    fn denials_say_why() {
        let clerk = person(&[Role::WarehouseClerk], Home::Branch(code("SH")));
        assert!(authorize(&clerk, Function::SalesDocs, Right::Add, Some(code("SH"))).is_ok());
        let e = authorize(&clerk, Function::Reports, Right::View, None).expect_err("HQ reports");
        assert_eq!(e.to_string(), "li.jia works at SH; reports across all branches is for people at HQ");
        let e = authorize(&clerk, Function::SalesDocs, Right::Add, Some(code("HB"))).expect_err("other branch");
        assert_eq!(e.to_string(), "li.jia works at SH, not at HB");
        let e = authorize(&clerk, Function::People, Right::Manage, Some(code("SH"))).expect_err("role");
        assert_eq!(e.to_string(), "li.jia's roles (warehouse clerk) do not give manage on people");
        let off = Person { disabled: true, ..clerk };
        assert_eq!(authorize(&off, Function::SalesDocs, Right::View, Some(code("SH"))), Err(Denied::Disabled { login: off.login }));
        let auditor = person(&[Role::HqAuditor], Home::Hq);
        assert!(authorize(&auditor, Function::Review, Right::Approve, Some(code("HB"))).is_ok());
        assert!(authorize(&auditor, Function::Reports, Right::View, None).is_ok());
        assert!(authorize(&auditor, Function::SalesDocs, Right::Add, Some(code("HB"))).is_err());
    }

    #[test]
    fn hq_roles_stay_at_hq() {
        assert!(matches!(person(&[Role::HqAdmin], Home::Branch(code("SH"))).validate(), Err(PersonError::HqRoleAtBranch { .. })));
        assert!(person(&[Role::Cashier, Role::Cashier], Home::Hq).validate().is_err());
        assert!(person(&[Role::Cashier, Role::Technician], Home::Branch(code("SH"))).validate().is_ok());
    }

    #[test]
    fn the_seed_clerk_is_held_to_both_scopes() {
        let sh = Whose::Branch(code("SH"));
        let branch: Scope = "warehouses=SH01*; categories=*; customers=200*,201*".parse().expect("scope");
        let mut clerk = person(&[Role::WarehouseClerk], Home::Branch(code("SH")));
        clerk.scope = "warehouses=SH01; categories=01*; customers=200*".parse().expect("scope");
        let whose = clerk.whose();
        let (b, p) = (ScopeOf { whose: &sh, scope: &branch }, ScopeOf { whose: &whose, scope: &clerk.scope });
        let mut doc = DocumentCodes::new();
        for (k, c) in [(ScopeKind::Warehouses, "SH01"), (ScopeKind::Categories, "0101"), (ScopeKind::Customers, "200102")] {
            doc.touch(k, c).expect("room");
        }
        assert!(check_document(&doc, b, p).is_ok());
        let mut bad = doc.clone();
        bad.touch(ScopeKind::Categories, "02").expect("room");
        bad.touch(ScopeKind::Customers, "310-0042").expect("room");
        assert_eq!(
            check_document(&bad, b, p).expect_err("category").to_string(),
            "product category 02 is outside li.jia's categories 01*; ask HQ to widen the scope"
        );
        let mut bad = doc.clone();
        bad.touch(ScopeKind::Customers, "310-0042").expect("room");
        assert_eq!(
            check_document(&bad, b, p).expect_err("customer").to_string(),
            "customer 310-0042 is outside SH's customers 200*,201*; ask HQ to widen the scope"
        );
    }

    #[test]
    fn every_doc_type_has_a_family_function() {
        for t in DocType::ALL {
            assert!(Function::ALL.contains(&Function::docs(DocFamily::of(*t))));
            assert!(Function::docs(DocFamily::of(*t)).is_docs());
        }
        assert_eq!(Function::ALL.iter().filter(|f| f.is_docs()).count(), 8, "one per DocFamily");
        assert_eq!(Function::ALL.iter().enumerate().filter(|(i, f)| **f as usize != *i).count(), 0);
    }

    fn role() -> impl Strategy<Value = Role> {
        proptest::sample::select(Role::ALL.to_vec())
    }

    proptest! {
        #[test]
        fn authorize_agrees_with_the_table(roles in proptest::collection::vec(role(), 0..4), f in 0..FUNCTION_COUNT, r in 0..4usize,
                                           at_hq: bool, same: bool, hq_wide: bool, disabled: bool) {
            let (function, right) = (Function::ALL[f], Right::ALL[r]);
            let home = if at_hq { Home::Hq } else { Home::Branch(code("SH")) };
            let mut p = person(&roles, home);
            p.disabled = disabled;
            let target = if hq_wide { None } else if same { Some(code("SH")) } else { Some(code("HB")) };
            let granted = roles.iter().any(|ro| role_rights(*ro, function).has(right));
            let place_ok = at_hq || (!hq_wide && same);
            prop_assert_eq!(authorize(&p, function, right, target).is_ok(), !disabled && granted && place_ok);
        }
    }
}
