//! Column arithmetic for fixed-pitch devices, and the GB18030 encoding they take.
//!
//! Receipt printers and pole displays are grids of character cells. An ASCII character
//! takes one cell; a CJK ideograph, kana, hangul or full-width form takes two, and its
//! GB18030 encoding is two bytes, so "columns" here are cells on paper. Nothing in this
//! module knows about ESC/POS commands.

/// Cells a character takes on a fixed-pitch printer or display.
///
/// Covers the East Asian Wide and Fullwidth blocks that matter on a Chinese till; anything
/// else printable counts as one cell. Control characters count as zero because
/// [`clean`] removes them before layout.
pub fn char_columns(c: char) -> usize {
    let u = u32::from(c);
    if u < 0x20 || (0x7f..0xa0).contains(&u) {
        return 0;
    }
    let wide = matches!(u,
        0x1100..=0x115F      // Hangul Jamo leading consonants
        | 0x2E80..=0x303E    // CJK radicals, Kangxi radicals, CJK symbols and punctuation
        | 0x3041..=0x33FF    // Hiragana, Katakana, Bopomofo, Hangul compatibility, CJK compatibility
        | 0x3400..=0x4DBF    // CJK Unified Ideographs Extension A
        | 0x4E00..=0x9FFF    // CJK Unified Ideographs
        | 0xA000..=0xA4CF    // Yi
        | 0xAC00..=0xD7A3    // Hangul syllables
        | 0xF900..=0xFAFF    // CJK Compatibility Ideographs
        | 0xFE30..=0xFE4F    // CJK Compatibility Forms
        | 0xFF00..=0xFF60    // Fullwidth forms
        | 0xFFE0..=0xFFE6    // Fullwidth signs
        | 0x20000..=0x2FFFD  // CJK Extensions B..F
        | 0x30000..=0x3FFFD  // CJK Extension G
    );
    if wide {
        2
    } else {
        1
    }
}

/// Cells a string takes.
pub fn columns(s: &str) -> usize {
    s.chars().map(char_columns).sum()
}

/// Removes characters that a device would take as commands.
///
/// Item names and store texts come from outside; an ESC or GS byte inside a product name
/// would otherwise reach the printer as a command (cut the paper, open the drawer). Tabs
/// and line breaks become spaces so one text stays one line.
pub fn clean(s: &str) -> String {
    s.chars()
        .filter_map(|c| match c {
            '\t' | '\n' | '\r' => Some(' '),
            c if char_columns(c) == 0 => None,
            c => Some(c),
        })
        .collect()
}

/// The longest prefix of `s` that fits in `cols` cells. A wide character that would
/// straddle the edge is left out rather than split.
pub fn fit(s: &str, cols: usize) -> &str {
    let mut used = 0;
    for (i, c) in s.char_indices() {
        let w = char_columns(c);
        if used + w > cols {
            return &s[..i];
        }
        used += w;
    }
    s
}

/// `s` cut to `cols` cells and padded with spaces on the right to exactly `cols`.
pub fn pad_right(s: &str, cols: usize) -> String {
    let s = fit(s, cols);
    let mut out = String::with_capacity(s.len() + cols);
    out.push_str(s);
    out.push_str(&" ".repeat(cols - columns(s)));
    out
}

/// `s` cut to `cols` cells and padded with spaces on the left to exactly `cols`.
pub fn pad_left(s: &str, cols: usize) -> String {
    let s = fit(s, cols);
    let mut out = String::with_capacity(s.len() + cols);
    out.push_str(&" ".repeat(cols - columns(s)));
    out.push_str(s);
    out
}

/// `left` and `right` on one line of `cols` cells, `right` flush with the edge. When both
/// do not fit, `left` is shortened: the number on the right is what the customer checks.
pub fn spread(left: &str, right: &str, cols: usize) -> String {
    let right = fit(right, cols);
    let room = cols - columns(right);
    let left = fit(left, room.saturating_sub(1));
    let mut out = String::with_capacity(left.len() + right.len() + cols);
    out.push_str(left);
    out.push_str(&" ".repeat(cols - columns(left) - columns(right)));
    out.push_str(right);
    out
}

/// Splits `s` into lines of at most `cols` cells, breaking between characters (CJK text
/// has no spaces to break at). Returns at least one line; bounded by the input length.
pub fn wrap(s: &str, cols: usize) -> Vec<&str> {
    assert!(cols >= 2, "a line must hold one wide character");
    let mut lines = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let head = fit(rest, cols);
        debug_assert!(!head.is_empty(), "cols >= 2 always fits one character");
        lines.push(head);
        rest = &rest[head.len()..];
    }
    if lines.is_empty() {
        lines.push("");
    }
    lines
}

/// GB18030 bytes of `s`. GB18030 maps every Unicode scalar, so nothing is lost.
pub fn gb18030(s: &str) -> Vec<u8> {
    let (bytes, _, _) = encoding_rs::GB18030.encode(s);
    bytes.into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cjk_counts_two_columns() {
        assert_eq!(columns("Cola"), 4);
        assert_eq!(columns("可乐"), 4);
        assert_eq!(columns("可乐 Cola"), 9);
        assert_eq!(columns("（）"), 4, "full-width parentheses");
        assert_eq!(columns("ｺｰﾗ"), 3, "half-width katakana stay narrow");
    }

    #[test]
    fn fit_never_splits_a_wide_character() {
        assert_eq!(fit("可口可乐", 5), "可口");
        assert_eq!(fit("可口可乐", 8), "可口可乐");
        assert_eq!(fit("ab可", 3), "ab");
    }

    #[test]
    fn padding_is_by_columns() {
        assert_eq!(pad_right("可乐", 6), "可乐  ");
        assert_eq!(pad_left("3.50", 6), "  3.50");
        assert_eq!(pad_right("可口可乐", 5), "可口 ");
        assert_eq!(spread("合计", "17.50", 12), "合计   17.50");
        assert_eq!(spread("很长的商品名称", "17.50", 12), "很长的 17.50");
    }

    #[test]
    fn wrap_by_columns() {
        assert_eq!(wrap("农夫山泉饮用天然水", 8), vec!["农夫山泉", "饮用天然", "水"]);
        assert_eq!(wrap("ab可c", 3), vec!["ab", "可c"]);
        assert_eq!(wrap("", 8), vec![""]);
    }

    #[test]
    fn clean_removes_commands() {
        assert_eq!(clean("Cola\x1bp\x00\x19\u{fa}"), "Colap\u{fa}");
        assert_eq!(clean("a\tb\nc"), "a b c");
    }

    #[test]
    fn gb18030_of_common_text() {
        assert_eq!(gb18030("中文"), [0xD6, 0xD0, 0xCE, 0xC4]);
        assert_eq!(gb18030("A"), b"A");
    }
}
