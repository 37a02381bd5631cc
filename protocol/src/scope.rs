//! Scope (管辖范围): which codes of eight range kinds a branch, and a person within it, may
//! touch — warehouses, product categories, customers, suppliers, employees, cash/bank
//! accounts, expense types and income types (seed 003 §(二)).
//!
//! A rule per kind is a list of patterns over hierarchical codes: an exact code, a prefix
//! (`200*`), an inclusive range of equal-length codes (`200100..200199`) or everything
//! (`*`). A kind without patterns allows nothing: scope is closed by default, and "all" is
//! always said out loud. A person is allowed a code only if both the branch's scope and the
//! person's own scope allow it. Scope is versioned at HQ (`ScopeVersion` only grows), and a
//! document names the version it was posted under.
//!
//! This module holds only the model and its text syntax (`customers=200*,300100..300199`).
//! It must not know documents, people or storage: callers hand it the codes to check.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::codes::{BranchCode, CODE_BYTES_MAX};

/// Most patterns in one rule: bounds the text a CLI or API call can make HQ keep and
/// every check's loop.
pub const SCOPE_PATTERNS_MAX: usize = 64;
/// Longest code a pattern may name, in bytes (the longest code of any kind).
pub const SCOPE_CODE_BYTES_MAX: usize = CODE_BYTES_MAX;

/// The eight range kinds, in the order seed 003 lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ScopeKind {
    Warehouses,
    Categories,
    Customers,
    Suppliers,
    Employees,
    Accounts,
    Expenses,
    Incomes,
}

impl ScopeKind {
    pub const ALL: [ScopeKind; 8] = [
        ScopeKind::Warehouses,
        ScopeKind::Categories,
        ScopeKind::Customers,
        ScopeKind::Suppliers,
        ScopeKind::Employees,
        ScopeKind::Accounts,
        ScopeKind::Expenses,
        ScopeKind::Incomes,
    ];

    /// Name in the text syntax and in messages ("SH's customers 200*").
    pub fn name(self) -> &'static str {
        match self {
            ScopeKind::Warehouses => "warehouses",
            ScopeKind::Categories => "categories",
            ScopeKind::Customers => "customers",
            ScopeKind::Suppliers => "suppliers",
            ScopeKind::Employees => "employees",
            ScopeKind::Accounts => "accounts",
            ScopeKind::Expenses => "expenses",
            ScopeKind::Incomes => "incomes",
        }
    }

    /// One code of this kind, in messages ("customer 310-0042 is outside …").
    pub fn label(self) -> &'static str {
        match self {
            ScopeKind::Warehouses => "warehouse",
            ScopeKind::Categories => "product category",
            ScopeKind::Customers => "customer",
            ScopeKind::Suppliers => "supplier",
            ScopeKind::Employees => "employee",
            ScopeKind::Accounts => "cash/bank account",
            ScopeKind::Expenses => "expense type",
            ScopeKind::Incomes => "income type",
        }
    }

    /// The seed's Chinese label, for pages.
    pub fn zh(self) -> &'static str {
        match self {
            ScopeKind::Warehouses => "仓库",
            ScopeKind::Categories => "商品类别",
            ScopeKind::Customers => "客户",
            ScopeKind::Suppliers => "供应商",
            ScopeKind::Employees => "职员",
            ScopeKind::Accounts => "现金银行账户",
            ScopeKind::Expenses => "费用类型",
            ScopeKind::Incomes => "收入类型",
        }
    }

    pub fn from_name(name: &str) -> Option<ScopeKind> {
        ScopeKind::ALL.into_iter().find(|k| k.name() == name)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a rule's text was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeParseError {
    /// The rule does not start with `kind=`.
    #[error("a scope rule reads `kind=pattern,pattern`, e.g. `customers=200*`; got {0:?}")]
    NoKind(String),
    /// The kind is not one of the eight.
    #[error(
        "unknown scope kind {0:?}; the kinds are warehouses, categories, customers, suppliers, employees, accounts, expenses, incomes"
    )]
    UnknownKind(String),
    /// The same kind twice in one scope text.
    #[error("scope kind {0} is given twice")]
    DuplicateKind(&'static str),
    /// A pattern is not a code, `code*`, `lo..hi` or `*`.
    #[error("bad scope pattern {pattern:?}: {why}")]
    BadPattern { pattern: String, why: &'static str },
    /// Too many patterns in one rule.
    #[error("a scope rule holds at most {max} patterns, got {count}")]
    TooManyPatterns { count: usize, max: usize },
}

/// A code as scope sees it: ASCII letters, digits, `-`, `_` and single inner dots (account
/// codes such as `1002.ICBC`), at most [`SCOPE_CODE_BYTES_MAX`] bytes. `..` and `*` are
/// syntax, so no code contains them.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ScopeCode(arrayvec::ArrayString<SCOPE_CODE_BYTES_MAX>);

impl ScopeCode {
    pub fn new(s: &str) -> Result<ScopeCode, ScopeParseError> {
        let bad = |why| ScopeParseError::BadPattern { pattern: s.chars().take(40).collect(), why };
        if s.is_empty() {
            return Err(bad("empty code"));
        }
        if s.len() > SCOPE_CODE_BYTES_MAX {
            return Err(bad("code longer than 32 bytes"));
        }
        if !s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) {
            return Err(bad("codes are ASCII letters, digits, '-', '_' and '.'"));
        }
        if s.starts_with('.') || s.ends_with('.') || s.contains("..") {
            return Err(bad("a dot in a code stands between two parts"));
        }
        // Length checked above, so the inline string has room.
        arrayvec::ArrayString::from(s).map(ScopeCode).map_err(|_| bad("code longer than 32 bytes"))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

impl fmt::Display for ScopeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for ScopeCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ScopeCode({:?})", self.as_str())
    }
}

// Serde through the text and the constructor: bytes from the wire cannot smuggle in a code
// that contains syntax.
impl Serialize for ScopeCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ScopeCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<ScopeCode, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        ScopeCode::new(&s).map_err(serde::de::Error::custom)
    }
}

/// One pattern of a rule.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Pattern {
    /// `*`: every code of the kind.
    All,
    /// `SH01`: that code only.
    Exact(ScopeCode),
    /// `200*`: the code `200` and every code below it in the hierarchy.
    Prefix(ScopeCode),
    /// `200100..200199`: codes of the bounds' length between them, inclusive. Hierarchical
    /// codes of one level have one length, so byte order is numeric order there; a code of
    /// another length is another level and never falls in the range.
    Range { lo: ScopeCode, hi: ScopeCode },
}

impl Pattern {
    pub fn matches(&self, code: &str) -> bool {
        match self {
            Pattern::All => true,
            Pattern::Exact(c) => c.as_str() == code,
            Pattern::Prefix(p) => code.starts_with(p.as_str()),
            Pattern::Range { lo, hi } => code.len() == lo.as_str().len() && lo.as_str() <= code && code <= hi.as_str(),
        }
    }
}

impl FromStr for Pattern {
    type Err = ScopeParseError;
    fn from_str(s: &str) -> Result<Pattern, ScopeParseError> {
        let s = s.trim();
        if s == "*" {
            return Ok(Pattern::All);
        }
        if let Some((lo, hi)) = s.split_once("..") {
            let (lo, hi) = (ScopeCode::new(lo)?, ScopeCode::new(hi)?);
            if lo.as_str().len() != hi.as_str().len() {
                return Err(ScopeParseError::BadPattern { pattern: s.to_string(), why: "a range's bounds have one length (one level)" });
            }
            if lo > hi {
                return Err(ScopeParseError::BadPattern { pattern: s.to_string(), why: "a range runs from low to high" });
            }
            return Ok(Pattern::Range { lo, hi });
        }
        match s.strip_suffix('*') {
            Some(prefix) => Ok(Pattern::Prefix(ScopeCode::new(prefix)?)),
            None => Ok(Pattern::Exact(ScopeCode::new(s)?)),
        }
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::All => f.write_str("*"),
            Pattern::Exact(c) => write!(f, "{c}"),
            Pattern::Prefix(p) => write!(f, "{p}*"),
            Pattern::Range { lo, hi } => write!(f, "{lo}..{hi}"),
        }
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({self})")
    }
}

impl TryFrom<String> for Pattern {
    type Error = ScopeParseError;
    fn try_from(s: String) -> Result<Pattern, ScopeParseError> {
        s.parse()
    }
}

impl From<Pattern> for String {
    fn from(p: Pattern) -> String {
        p.to_string()
    }
}

/// The patterns of one kind; empty allows nothing. At most [`SCOPE_PATTERNS_MAX`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<Pattern>", into = "Vec<Pattern>")]
pub struct Rule(Vec<Pattern>);

impl Rule {
    pub fn new(patterns: Vec<Pattern>) -> Result<Rule, ScopeParseError> {
        if patterns.len() > SCOPE_PATTERNS_MAX {
            return Err(ScopeParseError::TooManyPatterns { count: patterns.len(), max: SCOPE_PATTERNS_MAX });
        }
        Ok(Rule(patterns))
    }

    pub fn all() -> Rule {
        Rule(vec![Pattern::All])
    }

    pub fn none() -> Rule {
        Rule(Vec::new())
    }

    pub fn patterns(&self) -> &[Pattern] {
        &self.0
    }

    pub fn allows(&self, code: &str) -> bool {
        self.0.iter().any(|p| p.matches(code))
    }

    /// Parses the patterns after `kind=`: comma-separated, possibly none.
    pub fn parse_patterns(text: &str) -> Result<Rule, ScopeParseError> {
        if text.trim().is_empty() {
            return Ok(Rule::none());
        }
        let count = text.split(',').count();
        if count > SCOPE_PATTERNS_MAX {
            return Err(ScopeParseError::TooManyPatterns { count, max: SCOPE_PATTERNS_MAX });
        }
        Rule::new(text.split(',').map(str::parse).collect::<Result<_, _>>()?)
    }

    /// The patterns as a message shows them; `(none)` for an empty rule.
    pub fn describe(&self) -> String {
        if self.0.is_empty() {
            "(none)".to_string()
        } else {
            self.to_string()
        }
    }
}

impl TryFrom<Vec<Pattern>> for Rule {
    type Error = ScopeParseError;
    fn try_from(p: Vec<Pattern>) -> Result<Rule, ScopeParseError> {
        Rule::new(p)
    }
}

impl From<Rule> for Vec<Pattern> {
    fn from(r: Rule) -> Vec<Pattern> {
        r.0
    }
}

/// The patterns comma-joined, as the text syntax writes them after `kind=`.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// Parses one rule, `customers=200*,300100..300199`.
pub fn parse_rule(text: &str) -> Result<(ScopeKind, Rule), ScopeParseError> {
    let (kind, patterns) = text.split_once('=').ok_or_else(|| ScopeParseError::NoKind(text.chars().take(60).collect()))?;
    let kind = ScopeKind::from_name(kind.trim()).ok_or_else(|| ScopeParseError::UnknownKind(kind.trim().chars().take(40).collect()))?;
    Ok((kind, Rule::parse_patterns(patterns)?))
}

/// Prints one rule as [`parse_rule`] reads it.
pub fn print_rule(kind: ScopeKind, rule: &Rule) -> String {
    format!("{}={rule}", kind.name())
}

/// One rule per kind. Text form: rules joined by `; `, every kind named, so print∘parse is
/// the identity; a kind a text leaves out allows nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Scope {
    rules: [Rule; 8],
}

impl Scope {
    /// Allows nothing of any kind.
    pub fn none() -> Scope {
        Scope::default()
    }

    /// Allows everything (HQ's own people, and branches before HQ narrows them).
    pub fn all() -> Scope {
        Scope { rules: std::array::from_fn(|_| Rule::all()) }
    }

    pub fn rule(&self, kind: ScopeKind) -> &Rule {
        &self.rules[kind.index()]
    }

    /// This scope with `kind`'s rule replaced.
    pub fn with(mut self, kind: ScopeKind, rule: Rule) -> Scope {
        self.rules[kind.index()] = rule;
        self
    }

    pub fn allows(&self, kind: ScopeKind, code: &str) -> bool {
        self.rule(kind).allows(code)
    }

    /// Checks one code, naming whose scope refused it.
    pub fn check(&self, whose: &Whose, kind: ScopeKind, code: &str) -> Result<(), OutOfScope> {
        if self.allows(kind, code) {
            return Ok(());
        }
        Err(OutOfScope {
            kind,
            code: code.chars().take(SCOPE_CODE_BYTES_MAX + 8).collect(),
            whose: whose.clone(),
            rule: self.rule(kind).clone(),
        })
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, kind) in ScopeKind::ALL.into_iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(&print_rule(kind, self.rule(kind)))?;
        }
        Ok(())
    }
}

impl FromStr for Scope {
    type Err = ScopeParseError;
    fn from_str(text: &str) -> Result<Scope, ScopeParseError> {
        let mut scope = Scope::none();
        let mut seen = [false; 8];
        for part in text.split(';').filter(|p| !p.trim().is_empty()) {
            let (kind, rule) = parse_rule(part)?;
            if std::mem::replace(&mut seen[kind.index()], true) {
                return Err(ScopeParseError::DuplicateKind(kind.name()));
            }
            scope.rules[kind.index()] = rule;
        }
        Ok(scope)
    }
}

/// Whose scope refused: a branch's, or a person's within it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Whose {
    Branch(BranchCode),
    Person(String),
}

impl fmt::Display for Whose {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Whose::Branch(b) => write!(f, "{b}"),
            Whose::Person(login) => f.write_str(login),
        }
    }
}

/// A code outside a scope; the message names the rule so the operator knows whom to ask.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{} {code} is outside {whose}'s {} {}; ask HQ to widen the scope", kind.label(), kind.name(), rule.describe())]
pub struct OutOfScope {
    pub kind: ScopeKind,
    pub code: String,
    pub whose: Whose,
    pub rule: Rule,
}

/// A scope with whose it is, as the checks take it.
#[derive(Clone, Copy, Debug)]
pub struct ScopeOf<'a> {
    pub whose: &'a Whose,
    pub scope: &'a Scope,
}

/// A person may touch a code only if the branch's scope and the person's both allow it;
/// the branch's refusal is named first, since only HQ can widen it.
pub fn check_both(branch: ScopeOf<'_>, person: ScopeOf<'_>, kind: ScopeKind, code: &str) -> Result<(), OutOfScope> {
    branch.scope.check(branch.whose, kind, code)?;
    person.scope.check(person.whose, kind, code)
}

/// Which scope HQ issued: grows by one with every change HQ makes, never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ScopeVersion(pub u64);

impl fmt::Display for ScopeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// A branch's scope as HQ issued it, with the version documents posted under it name.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionedScope {
    pub version: ScopeVersion,
    pub scope: Scope,
}

impl VersionedScope {
    /// The next version HQ issues with `scope`; `None` only if versions ran out (2^64 edits).
    pub fn next(&self, scope: Scope) -> Option<VersionedScope> {
        Some(VersionedScope { version: ScopeVersion(self.version.0.checked_add(1)?), scope })
    }
}

#[cfg(test)]
#[path = "scope_tests.rs"]
mod tests;
