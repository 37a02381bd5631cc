//! The books as a plain-text accounting journal (beancount or hledger) that auditors open
//! in their own tools: `Ledger` gathers, per document, the general-ledger lines its
//! posting made (documents dated before the window become one opening transaction, those
//! after it are left out), and `Ledger::render` writes account open directives, the
//! opening balances and one transaction per document in date order, the document number
//! as link and tag, amounts in CNY.
//!
//! Inventory lots at cost (FIFO/LIFO layers as beancount lots) are not exported: inventory
//! is one CNY amount on 1405 like every other account; the header says so.
//!
//! Must not: do I/O or post (the caller posts each entry with `books::post` and hands the
//! posting in); must not compute a figure other than sums of the posting's own lines.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use rust_decimal::Decimal;

use super::accounts::{self as acc, Class};
use super::{GlLine, Posting};
use crate::codes::{AccountCode, BranchCode, PartyCode};
use crate::date::BusinessDate;
use crate::document::{CostMethod, DocNumber, DocType, Document, Period};

/// The one currency of the books.
pub const CURRENCY: &str = "CNY";

/// Which plain-text accounting dialect to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Beancount,
    Hledger,
}

impl Format {
    pub fn parse(s: &str) -> Option<Format> {
        match s {
            "beancount" => Some(Format::Beancount),
            "hledger" => Some(Format::Hledger),
            _ => None,
        }
    }
    /// What a file of this format is usually called (`.beancount`, `.journal`).
    pub fn extension(self) -> &'static str {
        match self {
            Format::Beancount => "beancount",
            Format::Hledger => "journal",
        }
    }
}

/// Why an export cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// `from` is after `to`.
    #[error("from {from} is after to {to}")]
    Backwards { from: String, to: String },
    /// A month that has no first day (a `Period` built by hand with month 0 or 13).
    #[error("{0} is not a month")]
    NoSuchMonth(String),
}

/// One posted document as the journal shows it: who, when, what, and its GL lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerDoc {
    pub branch: BranchCode,
    /// Its place in the branch's journal.
    pub seq: u64,
    pub number: DocNumber,
    pub doc_type: DocType,
    pub date: BusinessDate,
    pub counterparty: Option<PartyCode>,
    pub memo: String,
    pub gl: Vec<GlLine>,
}

impl LedgerDoc {
    pub fn of(seq: u64, doc: &Document, posting: &Posting) -> LedgerDoc {
        let h = &doc.header;
        LedgerDoc {
            branch: h.branch,
            seq,
            number: h.number.clone(),
            doc_type: h.doc_type,
            date: h.date,
            counterparty: h.counterparty,
            memo: h.memo.clone(),
            gl: posting.gl.clone(),
        }
    }
}

/// The journal of the months `from..=to`, gathered one posted document at a time.
#[derive(Clone, Debug)]
pub struct Ledger {
    from: Period,
    to: Period,
    first_day: BusinessDate,
    /// Balances (debit-positive) of the documents dated before `from`.
    opening: BTreeMap<AccountCode, Decimal>,
    docs: Vec<LedgerDoc>,
    branches: BTreeMap<BranchCode, CostMethod>,
}

impl Ledger {
    pub fn new(from: Period, to: Period) -> Result<Ledger, LedgerError> {
        if from > to {
            return Err(LedgerError::Backwards { from: from.label(), to: to.label() });
        }
        let first_day = BusinessDate::new(from.year, from.month, 1).map_err(|_| LedgerError::NoSuchMonth(from.label()))?;
        Ok(Ledger { from, to, first_day, opening: BTreeMap::new(), docs: Vec::new(), branches: BTreeMap::new() })
    }

    /// Takes one posted document: before the window into the opening balances, in it as
    /// a transaction, after it nowhere.
    pub fn take(&mut self, doc: LedgerDoc) {
        let month = Period::of(doc.date);
        if month < self.from {
            for l in &doc.gl {
                *self.opening.entry(l.account).or_default() += l.debit - l.credit;
            }
        } else if month <= self.to {
            self.docs.push(doc);
        }
    }

    /// Names a branch in the export and the cost method its books use (for the header).
    pub fn branch(&mut self, branch: BranchCode, method: CostMethod) {
        self.branches.insert(branch, method);
    }

    /// Balances (debit-positive) at the end of `to`, as the export's trial balance shows
    /// them: the opening balances plus every transaction's lines.
    pub fn closing(&self) -> BTreeMap<AccountCode, Decimal> {
        let mut out = self.opening.clone();
        for l in self.docs.iter().flat_map(|d| &d.gl) {
            *out.entry(l.account).or_default() += l.debit - l.credit;
        }
        out.retain(|_, v| !v.is_zero());
        out
    }

    pub fn render(&self, format: Format) -> String {
        let mut docs: Vec<&LedgerDoc> = self.docs.iter().collect();
        docs.sort_by_key(|a| (a.date, a.branch, a.seq));
        let accounts: BTreeSet<AccountCode> =
            self.opening.keys().copied().chain(docs.iter().flat_map(|d| d.gl.iter().map(|l| l.account))).collect();
        // Both dialects take `;` at the start of a line as a comment.
        let c = ";";
        let mut out = String::new();
        // Writing to a String cannot fail; `let _ =` below says so once per line.
        let _ = writeln!(out, "{c} Branchline books {}..{} in {CURRENCY}", self.from.label(), self.to.label());
        for (b, m) in &self.branches {
            let _ = writeln!(out, "{c} branch {b}: cost method {}", m.label());
        }
        let _ = writeln!(out, "{c} inventory (1405) is at cost in {CURRENCY}; FIFO/LIFO lots are not exported as lots");
        out.push('\n');
        match format {
            Format::Beancount => {
                let _ = writeln!(out, "option \"title\" \"Branchline {}..{}\"", self.from.label(), self.to.label());
                let _ = writeln!(out, "option \"operating_currency\" \"{CURRENCY}\"\n");
                for a in &accounts {
                    let _ = writeln!(out, "{} open {} {CURRENCY}", self.first_day, account_name(a));
                    let _ = writeln!(out, "  name: \"{}\"", quote(acc::name(a.chart())));
                }
            }
            Format::Hledger => {
                let _ = writeln!(out, "commodity 1000.00 {CURRENCY}\n");
                for a in &accounts {
                    let _ = writeln!(out, "account {}  ; name: {}", account_name(a), acc::name(a.chart()));
                }
            }
        }
        out.push('\n');
        let opening: Vec<(&AccountCode, &Decimal)> = self.opening.iter().filter(|(_, v)| !v.is_zero()).collect();
        if !opening.is_empty() {
            match format {
                Format::Beancount => {
                    let _ = writeln!(out, "{} * \"balances brought forward\" #opening", self.first_day);
                }
                Format::Hledger => {
                    let _ = writeln!(out, "{} * balances brought forward  ; opening:", self.first_day);
                }
            }
            for (a, v) in opening {
                let _ = writeln!(out, "  {}  {} {CURRENCY}", account_name(a), v);
            }
            out.push('\n');
        }
        for d in docs {
            let lines: Vec<(AccountCode, Decimal)> =
                d.gl.iter().map(|l| (l.account, l.debit - l.credit)).filter(|(_, v)| !v.is_zero()).collect();
            let what = if d.memo.is_empty() { d.doc_type.name().to_string() } else { format!("{} {}", d.doc_type.name(), d.memo) };
            if lines.is_empty() {
                let _ = writeln!(out, "{c} {} {} {}: no general-ledger lines\n", d.date, d.number, d.doc_type.name());
                continue;
            }
            match format {
                Format::Beancount => {
                    let _ = writeln!(out, "{} * \"{}\" \"{}\" ^{} #branch-{}", d.date, d.number, quote(&what), d.number, d.branch);
                    let _ = writeln!(out, "  seq: {}", d.seq);
                    let _ = writeln!(out, "  type: \"{}\"", d.doc_type.ident());
                    if let Some(p) = &d.counterparty {
                        let _ = writeln!(out, "  counterparty: \"{}\"", quote(p.as_str()));
                    }
                }
                Format::Hledger => {
                    let party = d.counterparty.map(|p| format!(", counterparty:{p}")).unwrap_or_default();
                    let _ = writeln!(
                        out,
                        "{} * {} | {}  ; doc:{}, branch:{}, seq:{}, type:{}{party}",
                        d.date,
                        d.number,
                        no_comment(&what),
                        d.number,
                        d.branch,
                        d.seq,
                        d.doc_type.ident()
                    );
                }
            }
            for (a, v) in lines {
                let _ = writeln!(out, "  {}  {} {CURRENCY}", account_name(&a), v);
            }
            out.push('\n');
        }
        out
    }
}

/// The account's name in both dialects: the class as root (`Assets`…), the chart code,
/// and the sub-account if any (`Assets:1002:ICBC`). A component must start with a capital
/// letter or digit and hold only letters, digits and `-`: `_` becomes `-` (codes have no
/// `-`) and a sub-account that starts with a small letter or `_` gets `X-` before it, so
/// two codes never share a name.
pub fn account_name(a: &AccountCode) -> String {
    let root = match acc::class(a.chart()) {
        Class::Asset => "Assets",
        Class::Liability => "Liabilities",
        Class::Equity => "Equity",
        Class::Income => "Income",
        Class::Expense => "Expenses",
    };
    let mut name = format!("{root}:{}", a.chart());
    if let Some((_, sub)) = a.as_str().split_once('.') {
        name.push(':');
        if !sub.starts_with(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit()) {
            name.push_str("X-");
        }
        name.extend(sub.chars().map(|c| if c == '_' { '-' } else { c }));
    }
    name
}

/// Text inside a beancount string.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Text in an hledger description, which a `;` would end.
fn no_comment(s: &str) -> String {
    s.replace(';', ",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn line(account: &str, debit: Decimal, credit: Decimal) -> GlLine {
        GlLine { account: AccountCode::parse(account).expect("valid"), debit, credit }
    }

    fn doc(number: &str, seq: u64, day: u8, memo: &str, gl: Vec<GlLine>) -> LedgerDoc {
        let number = DocNumber::parse(number).expect("valid number");
        LedgerDoc {
            branch: BranchCode::new("SH").expect("valid"),
            seq,
            doc_type: number.doc_type(),
            number,
            date: BusinessDate::new(2026, 6, day).expect("valid"),
            counterparty: None,
            memo: memo.into(),
            gl,
        }
    }

    fn sample() -> Ledger {
        let p = Period::parse("2026-06").expect("valid");
        let mut l = Ledger::new(p, p).expect("forwards");
        l.branch(BranchCode::new("SH").expect("valid"), CostMethod::Fifo);
        // May: capital paid in (before the window: opening balances).
        let mut may = doc("JH-SH-0601-001", 1, 1, "", vec![line("1002.ICBC", dec!(1000), dec!(0)), line("4001", dec!(0), dec!(1000))]);
        may.date = BusinessDate::new(2026, 5, 20).expect("valid");
        l.take(may);
        l.take(doc(
            "XS-SH-0605-001",
            3,
            5,
            "a \"good\" day",
            vec![line("1001", dec!(150.00), dec!(0)), line("6001", dec!(0), dec!(150.00))],
        ));
        l.take(doc("JH-SH-0602-001", 2, 2, "", vec![line("1405", dec!(100.00), dec!(0)), line("1002.ICBC", dec!(0), dec!(100.00))]));
        let mut july = doc("FY-SH-0701-001", 4, 1, "", vec![line("6601", dec!(5), dec!(0)), line("1001", dec!(0), dec!(5))]);
        july.date = BusinessDate::new(2026, 7, 1).expect("valid");
        l.take(july);
        l
    }

    #[test]
    fn beancount_by_hand() {
        let want = r#"; Branchline books 2026-06..2026-06 in CNY
; branch SH: cost method FIFO
; inventory (1405) is at cost in CNY; FIFO/LIFO lots are not exported as lots

option "title" "Branchline 2026-06..2026-06"
option "operating_currency" "CNY"

2026-06-01 open Assets:1001 CNY
  name: "库存现金 cash"
2026-06-01 open Assets:1002:ICBC CNY
  name: "银行存款 bank"
2026-06-01 open Assets:1405 CNY
  name: "库存商品 inventory"
2026-06-01 open Equity:4001 CNY
  name: "实收资本 equity"
2026-06-01 open Income:6001 CNY
  name: "主营业务收入 revenue"

2026-06-01 * "balances brought forward" #opening
  Assets:1002:ICBC  1000 CNY
  Equity:4001  -1000 CNY

2026-06-02 * "JH-SH-0602-001" "purchase receipt" ^JH-SH-0602-001 #branch-SH
  seq: 2
  type: "PurchaseReceipt"
  Assets:1405  100.00 CNY
  Assets:1002:ICBC  -100.00 CNY

2026-06-05 * "XS-SH-0605-001" "sale a \"good\" day" ^XS-SH-0605-001 #branch-SH
  seq: 3
  type: "Sale"
  Assets:1001  150.00 CNY
  Income:6001  -150.00 CNY

"#;
        let got = sample().render(Format::Beancount);
        assert_eq!(got, want, "got:\n{got}");
    }

    #[test]
    fn hledger_by_hand() {
        let got = sample().render(Format::Hledger);
        assert!(got.contains("commodity 1000.00 CNY\n"), "{got}");
        assert!(got.contains("account Assets:1002:ICBC  ; name: 银行存款 bank\n"), "{got}");
        assert!(got.contains(
            "2026-06-02 * JH-SH-0602-001 | purchase receipt  ; doc:JH-SH-0602-001, branch:SH, seq:2, type:PurchaseReceipt\n  Assets:1405  100.00 CNY\n  Assets:1002:ICBC  -100.00 CNY\n"
        ), "{got}");
        assert!(
            got.contains("2026-06-01 * balances brought forward  ; opening:\n  Assets:1002:ICBC  1000 CNY\n  Equity:4001  -1000 CNY\n"),
            "{got}"
        );
        assert!(!got.contains("FY-SH-0701"), "July is after the window: {got}");
    }

    #[test]
    fn closing_is_opening_plus_window() {
        let c = sample().closing();
        let bank = AccountCode::parse("1002.ICBC").expect("valid");
        assert_eq!(c.get(&bank), Some(&dec!(900.00)));
        assert_eq!(c.values().copied().sum::<Decimal>(), Decimal::ZERO);
        assert!(!c.contains_key(&AccountCode::parse("6601").expect("valid")));
    }

    #[test]
    fn names_are_valid_components() {
        assert_eq!(account_name(&AccountCode::parse("6601.rent_x").expect("valid")), "Expenses:6601:X-rent-x");
        assert_eq!(account_name(&AccountCode::parse("2202").expect("valid")), "Liabilities:2202");
        assert_eq!(account_name(&AccountCode::parse("6401").expect("valid")), "Expenses:6401");
        assert_eq!(account_name(&AccountCode::parse("3103").expect("valid")), "Equity:3103");
        assert!(Ledger::new(Period::parse("2026-07").expect("valid"), Period::parse("2026-06").expect("valid")).is_err());
    }
}
