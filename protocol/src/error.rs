//! Typed errors of the core. Each variant says what was wrong in words a branch
//! accountant or technician can act on; the I/O edges add context (which batch, which
//! peer) but never have to invent the explanation.

use rust_decimal::Decimal;

use crate::codes::{AccountCode, BranchCode, PartyCode, ProductCode, WarehouseCode};

/// A code or date that does not follow its rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodeError {
    /// The field was empty.
    #[error("{kind} is empty")]
    Empty { kind: &'static str },
    /// Longer than the rule allows.
    #[error("{kind} {value:?} is longer than {max} bytes")]
    TooLong { kind: &'static str, value: String, max: usize },
    /// A character the rule does not allow.
    #[error("{kind} {value:?} contains {ch:?}, which is not allowed")]
    BadChar { kind: &'static str, value: String, ch: char },
    /// Not a real calendar date in `YYYY-MM-DD`.
    #[error("{value:?} is not a date in YYYY-MM-DD form (years 2000-2199)")]
    BadDate { value: String },
    /// A document number that does not follow `TYPE-BRANCH-MMDD-NNN`.
    #[error("{value:?} is not a document number of the form TYPE-BRANCH-MMDD-NNN")]
    BadDocNumber { value: String },
}

/// A document that cannot be posted as written. Nothing is written when this is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DocError {
    #[error("the document has no lines")]
    NoLines,
    #[error("the document has {count} lines; at most {max} are allowed, split it")]
    TooManyLines { count: usize, max: usize },
    #[error("line {line}: quantity {qty} must be greater than zero (use the reversing document type for returns)")]
    NonPositiveQty { line: usize, qty: Decimal },
    #[error("line {line}: unit price {price} must not be negative")]
    NegativePrice { line: usize, price: Decimal },
    #[error("line {line}: {field} {value} has more than {max} decimal places")]
    TooPrecise { line: usize, field: &'static str, value: Decimal, max: u32 },
    #[error("line {line}: amount {given} does not equal quantity x unit price = {expected}")]
    AmountMismatch { line: usize, given: Decimal, expected: Decimal },
    #[error("line {line}: quantity x price overflows")]
    Overflow { line: usize },
    #[error("{doc_type} needs a {role} (counterparty)")]
    MissingCounterparty { doc_type: &'static str, role: &'static str },
    #[error("memo is {len} characters; at most {max} are allowed")]
    MemoTooLong { len: usize, max: usize },
    #[error("document number {number} does not match the header ({what})")]
    NumberMismatch { number: String, what: &'static str },
    #[error("{doc_type}: {what}")]
    Field { doc_type: &'static str, what: &'static str },
    #[error("journal entry does not balance: debits {debit}, credits {credit}")]
    Unbalanced { debit: Decimal, credit: Decimal },
    #[error("a retail sale needs the payment taken at the till (method, tendered, change)")]
    MissingPayment,
    #[error("paid {tendered} but the total is {total}")]
    Underpaid { total: Decimal, tendered: Decimal },
    #[error("change {change} is wrong: tendered {tendered} - total {total} = {expected}")]
    WrongChange { total: Decimal, tendered: Decimal, change: Decimal, expected: Decimal },
    #[error("a {method} payment takes exactly the total {total}, not {tendered}: change is given only for cash")]
    ChangeNotCash { method: &'static str, total: Decimal, tendered: Decimal },
    #[error("a {doc_type} takes no till payment; record money with a receipt or payment document")]
    UnexpectedPayment { doc_type: &'static str },
    #[error("document belongs to branch {doc} but was posted at branch {here}")]
    WrongBranch { doc: BranchCode, here: BranchCode },
    /// Free text that breaks the one text rule (`protocol::text`).
    #[error(transparent)]
    Text(#[from] crate::text::TextError),
}

/// Why the posting rules refuse a document against the current books.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PostError {
    #[error(transparent)]
    Invalid(#[from] DocError),
    #[error("unknown product {product}: HQ maintains the product list; ask HQ to add it, then sync")]
    UnknownProduct { product: ProductCode },
    /// A code of one of the eight kinds outside the branch's or the person's scope; the
    /// text names the rule.
    #[error(transparent)]
    OutOfScope(#[from] crate::profile::ScopeRefusal),
    /// Names the branch's cost method: none of them allows negative stock.
    #[error("not enough stock of {product} in {warehouse}: on hand {on_hand}, needed {needed} ({} allows no negative stock)", method.label())]
    NegativeStock { warehouse: WarehouseCode, product: ProductCode, on_hand: Decimal, needed: Decimal, method: crate::document::CostMethod },
    #[error("{date} falls in a closed period (closed through {closed}); post it in the current month or reopen at HQ")]
    PeriodClosed { date: String, closed: String },
    #[error("a month can only be closed after it ends: {period} cannot be closed on {date}")]
    CloseTooEarly { period: String, date: String },
    #[error("account {account} is not a cash (1001) or bank (1002) account")]
    NotMoneyAccount { account: AccountCode },
    #[error("account {account} is kept by a sub-ledger (stock, receivables, payables, consignment); post the business document instead of a manual entry")]
    ControlAccount { account: AccountCode },
    #[error("category {category:?} cannot be used as a sub-account")]
    BadCategory { category: String },
    #[error("customer {customer} would owe {owed} + {adding}, above the credit limit {limit}")]
    CreditLimit { customer: PartyCode, limit: Decimal, owed: Decimal, adding: Decimal },
    #[error("{doc} has {open} open, cannot settle {amount}")]
    OverSettled { doc: String, open: Decimal, amount: Decimal },
    #[error("{doc} is not an open item of {party}; nothing to settle")]
    NothingToSettle { doc: String, party: PartyCode },
    #[error("transfer from {warehouse} to itself")]
    SameWarehouse { warehouse: WarehouseCode },
    #[error("cost adjustment of {product} in {warehouse} must name the quantity on hand ({on_hand}), not {given}")]
    AdjustQtyMismatch { warehouse: WarehouseCode, product: ProductCode, on_hand: Decimal, given: Decimal },
    #[error("{party} holds {held} of {product} on consignment, not {needed}")]
    NotEnoughConsigned { party: PartyCode, product: ProductCode, held: Decimal, needed: Decimal },
    #[error("{party} has {outstanding} of {product} on loan, cannot return {returning}")]
    NotEnoughOnLoan { party: PartyCode, product: ProductCode, outstanding: Decimal, returning: Decimal },
    #[error("opening balances must come before any other document")]
    OpeningAfterPosting,
    /// Opening balances are taken until the first month is closed (see `ledger::opening`).
    #[error("opening balances are taken only until the first month is closed, and this branch is closed through {closed}; enter what is missing as ordinary documents, or have an HQ auditor reopen the months (反结账)")]
    OpeningAfterClose { closed: String },
    /// A cost method is chosen only before the first non-opening document is posted.
    #[error("the cost method can be chosen only before the first document other than opening balances; {posted} documents are posted under {current}, so it stays {current} (it cannot become {wanted})")]
    CostMethodAfterPosting { current: String, wanted: String, posted: u64 },
    /// A month that is closed already (a second close of it).
    #[error("{period} is closed already (the books are closed through {closed}); the next month to close is {next}")]
    AlreadyClosed { period: String, closed: String, next: String },
    /// A reopen (反结账) of a month that is not the latest closed one.
    #[error("only the latest closed month can be reopened: the books are closed through {closed}, so {period} cannot be reopened{hint}")]
    ReopenNotLatest { period: String, closed: String, hint: String },
    /// A stock document dated before the latest movement already posted for one of its
    /// warehouse × product positions (the date-order policy of `posting::mod`).
    #[error("{date} is before the latest movement of {product} in {warehouse} ({latest}): stock documents are posted in date order per warehouse and product, so a period's quantities and costs stay true; date it {latest} or later")]
    BackDated { warehouse: WarehouseCode, product: ProductCode, date: String, latest: String },
    #[error("the cost method is frozen at {current}; it cannot become {wanted}")]
    CostMethodFrozen { current: String, wanted: String },
    /// A return names a document that is no sale (or receipt) of the product with goods
    /// left to return within the return window.
    #[error("{doc} is no {what} of {product} with goods left to return (a return names its original {what} of the last {months} months)", months = crate::books::returns::RETURN_WINDOW_MONTHS)]
    ReturnNoOriginal { doc: String, product: ProductCode, what: &'static str },
    /// A return from (or to) another party than the original's.
    #[error("{doc} was a {what} with {original}, not {party}")]
    ReturnWrongParty { doc: String, what: &'static str, original: PartyCode, party: PartyCode },
    /// More returned than the original left unreturned (lines repeating a product count
    /// together).
    #[error("{doc} left {left} of {product} unreturned; cannot return {qty}")]
    ReturnTooMuch { doc: String, product: ProductCode, left: Decimal, qty: Decimal },
    /// Cash or bank would go below the overdraft HQ allows the account (zero unless set).
    #[error("{account} holds {balance}; paying out {taking} would take it below zero by more than the {allowed} HQ allows: move money into it first, or ask HQ for an overdraft allowance")]
    Overdrawn { account: AccountCode, balance: Decimal, taking: Decimal, allowed: Decimal },
    /// A transfer step whose cost layers are not what its books or lines say.
    #[error("{doc}: {why}")]
    TransferLayers { doc: String, why: String },
    #[error("cannot reverse {doc}: {why}")]
    CannotReverse { doc: String, why: String },
    /// The branch clock's rules for a date (`dating`): applied where a document is
    /// entered, never on replay or at HQ.
    #[error(transparent)]
    Dated(#[from] crate::dating::DateRefusal),
    /// A figure posting computes (value × quantity, a sum) would exceed what a `Decimal`
    /// holds (about 7.9 × 10^28); nothing is posted.
    #[error("the figures are too large to post: {what} would exceed 7.9 × 10^28; split the document into smaller ones")]
    Overflow { what: &'static str },
}

impl From<crate::books::stock::Overflow> for PostError {
    fn from(o: crate::books::stock::Overflow) -> PostError {
        PostError::Overflow { what: o.what }
    }
}

/// A journal run that does not continue the chain we hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    #[error("entries are not consecutive: expected seq {expected}, found {found}")]
    NotConsecutive { expected: u64, found: u64 },
    #[error("fork at seq {seq}: its previous-hash does not match the entry we hold (tampering or a restored old copy of the branch)")]
    Fork { seq: u64 },
    #[error("entry {seq} belongs to branch {found}, batch is from {expected}")]
    WrongBranch { seq: u64, expected: BranchCode, found: BranchCode },
}

/// A batch that cannot be trusted or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    #[error("batch signature does not verify against the enrolled key of branch {branch}")]
    BadSignature { branch: BranchCode },
    #[error("batch format version {found} is not supported (this build reads version {supported}); upgrade the older side")]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("batch bytes are malformed: {0}")]
    Malformed(String),
    #[error("batch is empty")]
    Empty,
    #[error("batch has {count} entries; at most {max} are allowed")]
    TooLarge { count: usize, max: usize },
    #[error("batch claims branch {claimed} but the session is for branch {session}")]
    BranchMismatch { claimed: BranchCode, session: BranchCode },
    #[error(transparent)]
    Chain(#[from] ChainError),
}

/// Bytes on the wire that are not a valid frame or message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: usize, max: usize },
    #[error("wire version {found} is not supported (this build speaks {supported})")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("message is malformed: {0}")]
    Malformed(String),
    #[error("frame is empty")]
    EmptyFrame,
}
