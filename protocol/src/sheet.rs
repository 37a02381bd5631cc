//! CSV for spreadsheets: the one CSV writer of both binaries (through the `csv` crate,
//! which quotes only what needs it and doubles inner quotes), used for reports, stock
//! lists and the catalog export. Excel opens UTF-8 with Chinese names correctly only after
//! a byte-order mark, so `excel` starts with one.
//!
//! Must not: know what the rows mean (callers choose columns and their order) or do I/O
//! (it writes to memory).

/// The UTF-8 byte-order mark Excel needs to read UTF-8.
pub const EXCEL_BOM: &str = "\u{feff}";

/// `header` and `rows` as CSV text, one line each. Rows may differ in length (the writer
/// is flexible); writing into memory cannot fail.
pub fn csv<R, F>(header: &[&str], rows: impl IntoIterator<Item = R>) -> String
where
    R: IntoIterator<Item = F>,
    F: AsRef<[u8]>,
{
    // Writing to a Vec does no I/O, and a flexible writer refuses no row length: nothing
    // is left to fail on.
    const INFALLIBLE: &str = "a flexible CSV writer into a Vec cannot fail";
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(Vec::new());
    w.write_record(header).expect(INFALLIBLE);
    for row in rows {
        w.write_record(row).expect(INFALLIBLE);
    }
    let bytes = w.into_inner().expect(INFALLIBLE);
    String::from_utf8(bytes).expect("the writer copies the UTF-8 strings it is given")
}

/// [`csv`] after the byte-order mark: what a person opens in Excel.
pub fn excel<R, F>(header: &[&str], rows: impl IntoIterator<Item = R>) -> String
where
    R: IntoIterator<Item = F>,
    F: AsRef<[u8]>,
{
    let mut out = String::from(EXCEL_BOM);
    out.push_str(&csv(header, rows));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_only_what_needs_it_and_starts_with_a_bom_for_excel() {
        let rows = vec![vec!["1001 现金", "12.50"], vec!["1002.A,\"B\"", "-5"], vec!["line\nbreak", ""]];
        assert_eq!(
            excel(&["account", "balance"], rows),
            "\u{feff}account,balance\n1001 现金,12.50\n\"1002.A,\"\"B\"\"\",-5\n\"line\nbreak\",\n"
        );
        assert_eq!(csv(&["a"], Vec::<Vec<&str>>::new()), "a\n");
    }
}
