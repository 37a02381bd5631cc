//! Document numbers `TYPE-BRANCH-MMDD-NNN` (seed 003): made by the branch, parsed back.
//! Must not: decide which serial comes next (the branch store counts).

use super::*;

/// `TYPE-BRANCH-MMDD-NNN`, e.g. `XS-SH-0609-001`. Serial is at least three digits and
/// widens past 999 rather than wrapping: a busy branch can post more than 999 a day.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DocNumber {
    // Readable by the document model (a header's number must agree with the header);
    // made only through `DocNumber::new`/parsing, never field by field.
    pub(super) doc_type: DocType,
    pub(super) branch: BranchCode,
    pub(super) month: u8,
    pub(super) day: u8,
    pub(super) serial: u32,
}

impl DocNumber {
    pub fn new(doc_type: DocType, branch: BranchCode, date: BusinessDate, serial: u32) -> DocNumber {
        assert!(serial >= 1, "document serials start at 1");
        DocNumber { doc_type, branch, month: date.month(), day: date.day(), serial }
    }

    pub fn parse(s: &str) -> Result<DocNumber, CodeError> {
        let bad = || CodeError::BadDocNumber { value: s.chars().take(40).collect() };
        let mut parts = s.split('-');
        let (Some(t), Some(b), Some(md), Some(n), None) = (parts.next(), parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(bad());
        };
        let doc_type = DocType::from_code(t).ok_or_else(bad)?;
        let branch = BranchCode::new(b).map_err(|_| bad())?;
        if md.len() != 4 || n.len() < 3 || !md.bytes().chain(n.bytes()).all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        // One spelling per number: serials widen past 999 without leading zeros.
        if n.len() > 3 && n.starts_with('0') {
            return Err(bad());
        }
        let month: u8 = md[0..2].parse().map_err(|_| bad())?;
        let day: u8 = md[2..4].parse().map_err(|_| bad())?;
        // 2000 is a leap year, so this accepts 02-29 and checks month/day ranges.
        BusinessDate::new(2000, month, day).map_err(|_| bad())?;
        let serial: u32 = n.parse().map_err(|_| bad())?;
        if serial == 0 {
            return Err(bad());
        }
        Ok(DocNumber { doc_type, branch, month, day, serial })
    }

    pub fn doc_type(&self) -> DocType {
        self.doc_type
    }
    pub fn branch(&self) -> &BranchCode {
        &self.branch
    }
    pub fn serial(&self) -> u32 {
        self.serial
    }
}

impl fmt::Display for DocNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{:02}{:02}-{:03}", self.doc_type.code(), self.branch, self.month, self.day, self.serial)
    }
}
impl fmt::Debug for DocNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocNumber({self})")
    }
}
impl TryFrom<String> for DocNumber {
    type Error = CodeError;
    fn try_from(s: String) -> Result<Self, CodeError> {
        DocNumber::parse(&s)
    }
}
impl From<DocNumber> for String {
    fn from(n: DocNumber) -> String {
        n.to_string()
    }
}
