//! Validated identifiers: branch, warehouse, product, operator and counterparty codes.
//!
//! Parse, don't validate: every code is a newtype whose only constructor checks the rule,
//! so code that holds a `BranchCode` never re-checks it. Serde goes through the same
//! constructor (`try_from`), so bytes from the wire cannot smuggle in an invalid code.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::CodeError;

/// Longest code of any kind, in bytes. Bounds every key we build from codes.
pub const CODE_BYTES_MAX: usize = 32;

fn check_code(kind: &'static str, s: &str, max: usize, allow: fn(char) -> bool) -> Result<(), CodeError> {
    if s.is_empty() {
        return Err(CodeError::Empty { kind });
    }
    if s.len() > max {
        return Err(CodeError::TooLong { kind, value: s.chars().take(40).collect(), max });
    }
    if let Some(c) = s.chars().find(|c| !allow(*c)) {
        return Err(CodeError::BadChar { kind, value: s.to_string(), ch: c });
    }
    Ok(())
}

/// Codes live inline: every kind is at most [`CODE_BYTES_MAX`] bytes, so a code is a
/// fixed 36-byte value. Cloning one (every stock key, sales row and ledger line holds
/// some) is a copy, never an allocation; the books engine clones codes per line.
type Inline = arrayvec::ArrayString<CODE_BYTES_MAX>;

macro_rules! code_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:expr, $allow:expr) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Inline);

        impl $name {
            pub fn new(s: impl AsRef<str>) -> Result<Self, CodeError> {
                let s = s.as_ref();
                check_code($kind, s, $max, $allow)?;
                // `check_code` bounds the length by `$max`, never above CODE_BYTES_MAX.
                Inline::from(s).map(Self).map_err(|_| CodeError::TooLong { kind: $kind, value: s.chars().take(40).collect(), max: $max })
            }
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }
        impl TryFrom<String> for $name {
            type Error = CodeError;
            fn try_from(s: String) -> Result<Self, CodeError> {
                Self::new(s)
            }
        }
        impl From<$name> for String {
            fn from(c: $name) -> String {
                c.0.as_str().to_string()
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0.as_str())
            }
        }
        impl std::str::FromStr for $name {
            type Err = CodeError;
            fn from_str(s: &str) -> Result<Self, CodeError> {
                Self::new(s)
            }
        }
        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        // Through the constructor, from a borrowed or transient string: bytes from the
        // wire cannot smuggle in an invalid code, and decoding allocates nothing.
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl serde::de::Visitor<'_> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str($kind)
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$name, E> {
                        $name::new(s).map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

code_type!(
    /// Branch letter code from the seed's table: `SH`, `HB`, `SCCD`; HQ itself is `HQ`.
    /// Upper-case ASCII letters only, because it is embedded in document numbers.
    BranchCode, "branch code", 8, |c| c.is_ascii_uppercase()
);
code_type!(
    /// Warehouse code, e.g. `00` (HQ goods), `SH01` (Shanghai goods), `SH01-T` (in transit).
    WarehouseCode, "warehouse code", 16, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_'
);
code_type!(
    /// Product code, often the barcode itself.
    ProductCode, "product code", CODE_BYTES_MAX, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.'
);
code_type!(
    /// Who posted a document: an employee code or login name (audit trail).
    /// No control, bidirectional or whitespace character (`protocol::text`'s rule).
    OperatorId, "operator", CODE_BYTES_MAX, |c| !c.is_whitespace() && !crate::text::is_forbidden(c)
);
code_type!(
    /// Customer or supplier code (hierarchical, e.g. `200102`); supplier and customer codes never collide.
    PartyCode, "customer/supplier code", CODE_BYTES_MAX, |c| c.is_ascii_alphanumeric() || c == '-' || c == '_'
);

code_type!(
    /// Ledger account: four digits of the chart, optionally `.` and a sub-account, e.g.
    /// `1001` cash, `1002.ICBC` one bank account, `6601.RENT` one expense category.
    AccountCode, "account code", CODE_BYTES_MAX, |c| c.is_ascii_alphanumeric() || c == '.' || c == '_'
);

impl AccountCode {
    /// The four-digit chart account this code rolls up to.
    pub fn chart(&self) -> &str {
        self.0.split('.').next().unwrap_or(self.0.as_str())
    }

    /// `new` plus the shape rule: four digits, then optionally `.SUB`.
    pub fn parse(s: &str) -> Result<AccountCode, CodeError> {
        let code = AccountCode::new(s)?;
        let chart = code.chart();
        let sub_ok = code.0.split_once('.').is_none_or(|(_, sub)| !sub.is_empty() && !sub.contains('.'));
        if chart.len() != 4 || !chart.bytes().all(|b| b.is_ascii_digit()) || !sub_ok {
            return Err(CodeError::BadChar { kind: "account code", value: s.to_string(), ch: '?' });
        }
        Ok(code)
    }

    /// A sub-account of a chart account.
    pub fn sub(chart: &str, sub: &str) -> Result<AccountCode, CodeError> {
        AccountCode::parse(&format!("{chart}.{sub}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn branch_codes_are_upper_letters() {
        assert!(BranchCode::new("SH").is_ok());
        assert!(BranchCode::new("SCCD").is_ok());
        assert!(BranchCode::new("sh").is_err());
        assert!(BranchCode::new("").is_err());
        assert!(BranchCode::new("S-H").is_err());
        assert!(BranchCode::new("ABCDEFGHI").is_err());
    }

    #[test]
    fn account_codes_roll_up_to_the_chart() {
        let a = AccountCode::parse("1002.ICBC").expect("valid");
        assert_eq!(a.chart(), "1002");
        assert!(AccountCode::parse("102").is_err());
        assert!(AccountCode::parse("1002.").is_err());
        assert!(AccountCode::parse("1002.A.B").is_err());
    }

    #[test]
    fn serde_goes_through_the_constructor() {
        let bad: Result<BranchCode, _> = serde_json::from_str("\"s h\"");
        assert!(bad.is_err());
        let good: WarehouseCode = serde_json::from_str("\"SH01-T\"").expect("valid code");
        assert_eq!(good.as_str(), "SH01-T");
    }

    #[test]
    fn inline_codes_decode_from_escaped_and_binary_forms() {
        // An escaped JSON string cannot be borrowed; it still decodes.
        let op: OperatorId = serde_json::from_str("\"\\u5f20\\u4e09\"").expect("escaped operator name");
        assert_eq!(op.as_str(), "张三");
        let max = "P".repeat(CODE_BYTES_MAX);
        let code = ProductCode::new(&max).expect("longest product code");
        let bytes = postcard::to_allocvec(&code).expect("encode");
        assert_eq!(postcard::from_bytes::<ProductCode>(&bytes).expect("decode"), code);
        // One byte over the limit on the wire is refused by the constructor, not truncated.
        let over = postcard::to_allocvec(&format!("{max}P")).expect("encode string");
        assert!(postcard::from_bytes::<ProductCode>(&over).is_err());
        assert!(BranchCode::new("ABCDEFGH").is_ok() && BranchCode::new(&max).is_err());
    }
}
