//! Serde for `Decimal` that is compact in postcard and readable in JSON.
//!
//! Human-readable formats (JSON for the HTTP API) get the decimal as a string, so "12.50"
//! keeps its scale and no float ever appears. Binary formats (postcard on the wire and in
//! sled) get `(mantissa, scale)`: postcard encodes the i128 mantissa as a zig-zag varint,
//! so `12.50` costs 3 bytes instead of 16.
//!
//! Must not: round or rescale a value; it carries what it is given.

use rust_decimal::Decimal;
use serde::{de::Error as _, Deserialize, Deserializer, Serialize, Serializer};

pub fn serialize<S: Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    if s.is_human_readable() {
        s.serialize_str(&d.to_string())
    } else {
        (d.mantissa(), d.scale() as u8).serialize(s)
    }
}

/// What a JSON decimal must look like; serde's "invalid type" errors end with it, so a
/// float or an object in a money field reads `expected a decimal string like "2.5"`.
pub const EXPECTED: &str = "a decimal string like \"2.5\"";

struct DecimalVisitor;

impl serde::de::Visitor<'_> for DecimalVisitor {
    type Value = Decimal;
    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(EXPECTED)
    }
    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Decimal, E> {
        s.trim().parse::<Decimal>().map_err(|_| E::custom(format!("{:?} is not {EXPECTED}", s.chars().take(40).collect::<String>())))
    }
    fn visit_i64<E: serde::de::Error>(self, i: i64) -> Result<Decimal, E> {
        Ok(Decimal::from(i))
    }
    fn visit_u64<E: serde::de::Error>(self, u: u64) -> Result<Decimal, E> {
        Ok(Decimal::from(u))
    }
    // No `visit_f64`: a JSON number with a fraction is refused, since a float cannot
    // hold every cent; serde's message then names what was given and `EXPECTED`.
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    if d.is_human_readable() {
        d.deserialize_any(DecimalVisitor)
    } else {
        let (mantissa, scale) = <(i128, u8)>::deserialize(d)?;
        Decimal::try_from_i128_with_scale(mantissa, u32::from(scale)).map_err(|e| D::Error::custom(format!("bad decimal: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;
    use serde::{Deserialize, Serialize};

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct W(#[serde(with = "super")] rust_decimal::Decimal);

    #[test]
    fn postcard_is_compact_and_exact() {
        let bytes = postcard::to_allocvec(&W(dec!(12.50))).expect("encode");
        assert_eq!(bytes.len(), 3);
        let back: W = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back.0.to_string(), "12.50");
    }

    #[test]
    fn json_is_a_string_and_rejects_garbage() {
        assert_eq!(serde_json::to_string(&W(dec!(-0.10))).expect("json"), "\"-0.10\"");
        assert!(serde_json::from_str::<W>("\"abc\"").is_err());
        assert_eq!(serde_json::from_str::<W>("7").expect("int").0, dec!(7));
        // A float, an object and garbage all say what a decimal looks like.
        for bad in ["2.5", "{}", "true", "\"2,5\""] {
            let e = serde_json::from_str::<W>(bad).expect_err(bad).to_string();
            assert!(e.contains("a decimal string like \"2.5\""), "{bad}: {e}");
        }
    }
}

/// The same for `Option<Decimal>` (`null` / absent in JSON).
pub mod option {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Serialize, Deserialize)]
    struct W(#[serde(with = "super")] Decimal);

    pub fn serialize<S: Serializer>(d: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        d.map(W).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

/// A `Decimal` that carries this module's serde wherever it goes (map values, tuples).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct Dec(#[serde(with = "self")] pub Decimal);
