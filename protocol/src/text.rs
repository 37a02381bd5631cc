//! The one rule for free text people type and other people later read: memos, operator
//! logins, names of products, parties, people and branches. It holds the rule and its
//! error only; callers (document validation here, HQ's master-data handlers) apply it.
//!
//! **The rule: refuse, never strip.** Text is refused when it holds
//! - a control character (Unicode `Cc`: NUL, tab, CR/LF, ESC, DEL, the C1 range): they
//!   break receipts (ESC/POS takes ESC and GS as commands), CSV and log lines;
//! - a bidirectional control (U+061C, U+200E, U+200F, U+202A–U+202E, U+2066–U+2069): an
//!   override like U+202E makes a report show `0001-SX` for `XS-1000`;
//! - a line or paragraph separator (U+2028, U+2029) or a byte-order mark (U+FEFF).
//!
//! Stripping would be kinder but silently changes what a person typed into what is signed
//! and booked, so the two could differ with nobody told; a refusal names the field, the
//! character and where it is, and the person retypes. Branch and HQ both call this from
//! `Document::validate`, so a branch cannot post, nor HQ accept, a memo the other refuses.
//! Must not touch: I/O, the books.

/// Is `c` refused in people's text (see the module rule)?
pub fn is_forbidden(c: char) -> bool {
    c.is_control() || is_bidi_control(c) || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// The bidirectional formatting characters (Unicode `Bidi_Control`).
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A character the rule refuses, with where it was.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} holds {} at character {position}; remove it and type the text again (control characters, bidirectional overrides and line separators are refused, never stripped)", describe(*ch))]
pub struct TextError {
    /// Which field (`memo`, `product name`…).
    pub field: &'static str,
    pub ch: char,
    /// 1-based character position.
    pub position: usize,
}

fn describe(c: char) -> String {
    let what = match c {
        '\0' => "NUL",
        '\t' => "a tab",
        '\n' | '\r' => "a line break",
        '\u{1b}' => "ESC",
        c if is_bidi_control(c) => "a bidirectional control",
        '\u{2028}' | '\u{2029}' => "a line separator",
        '\u{feff}' => "a byte-order mark",
        _ => "a control character",
    };
    format!("{what} (U+{:04X})", u32::from(c))
}

/// Checks `s` against the rule.
pub fn check(field: &'static str, s: &str) -> Result<(), TextError> {
    match s.chars().enumerate().find(|(_, c)| is_forbidden(*c)) {
        Some((i, ch)) => Err(TextError { field, ch, position: i + 1 }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_chinese_and_punctuation_pass() {
        assert!(check("memo", "矿泉水 550ml，第2箱 (退) — ok!").is_ok());
        assert!(check("memo", "").is_ok());
    }

    #[test]
    fn controls_bidi_and_separators_are_refused_with_their_place() {
        for (s, pos) in [
            ("a\0b", 2),
            ("tab\there", 4),
            ("x\ny", 2),
            ("\u{1b}@", 1),
            ("abc\u{202e}cba", 4),
            ("\u{2066}", 1),
            ("a\u{2028}", 2),
            ("\u{feff}x", 1),
            ("\u{85}", 1),
            ("\u{7f}", 1),
        ] {
            let e = check("memo", s).expect_err(s);
            assert_eq!(e.position, pos, "{s:?}");
            assert!(e.to_string().starts_with("memo holds "), "{e}");
        }
        let e = check("memo", "XS\u{202e}0001").expect_err("override");
        assert!(e.to_string().contains("bidirectional control (U+202E)"), "{e}");
    }
}
