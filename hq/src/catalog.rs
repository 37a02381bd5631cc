//! The product catalog as a spreadsheet: import from CSV, export to CSV.
//!
//! Technicians set up HQ from the catalog they already keep in Excel, so an import must
//! take what Excel writes: a header row, quoted fields, a UTF-8 byte-order mark, or — as
//! Chinese Excel saves "CSV" by default — GB18030 (GBK) instead of UTF-8. Columns are
//! found by their header name, in any order: `code`, `name` (required), `unit`,
//! `retail_price`, `price1`..`price4`, `category` (the product category scope runs
//! over, e.g. `01`) (optional). An import is all or nothing: every
//! problem is reported with its line number and nothing is written until there is none.

use std::collections::BTreeMap;

use protocol::codes::ProductCode;
use protocol::decimal_serde::Dec;
use protocol::profile::{Product, PRICE_LEVELS_MAX};
use protocol::Decimal;

/// The header `export` writes and `import` reads.
pub const HEADER: [&str; 9] = ["code", "name", "unit", "retail_price", "price1", "price2", "price3", "price4", "category"];

/// One problem in a catalog file; it prints as `line N: what is wrong`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CatalogProblem {
    /// The header row cannot be read as CSV.
    #[error("line 1: cannot read the header row: {0}")]
    Header(String),
    /// The header names no `code` or no `name` column.
    #[error("line 1: the header needs `code` and `name` columns (found: {found}); see `hq product export`")]
    Columns { found: String },
    /// A row is wrong: CSV syntax, a code, an empty name, an amount, a repeated product.
    #[error("line {line}: {what}")]
    Row { line: u64, what: String },
}

/// The catalog rows of a CSV file, or every problem found in it.
pub fn parse_csv(bytes: &[u8]) -> Result<Vec<(ProductCode, Product)>, Vec<CatalogProblem>> {
    let text = decode(bytes);
    let mut reader = csv::ReaderBuilder::new().flexible(true).trim(csv::Trim::All).from_reader(text.as_bytes());
    let headers = match reader.headers() {
        Ok(h) => h.iter().map(|h| h.to_ascii_lowercase()).collect::<Vec<_>>(),
        Err(e) => return Err(vec![CatalogProblem::Header(e.to_string())]),
    };
    let col = |name: &str| headers.iter().position(|h| h == name);
    let (Some(code_col), Some(name_col)) = (col("code"), col("name")) else {
        return Err(vec![CatalogProblem::Columns { found: headers.join(", ") }]);
    };
    let unit_col = col("unit");
    let retail_col = col("retail_price");
    let category_col = col("category");
    let price_cols: Vec<usize> = (1..=PRICE_LEVELS_MAX).filter_map(|i| col(&format!("price{i}"))).collect();

    let mut errors = Vec::new();
    let mut rows = Vec::new();
    let mut first_line: BTreeMap<ProductCode, u64> = BTreeMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(CatalogProblem::Row { line: e.position().map_or(0, |p| p.line()), what: e.to_string() });
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        let field = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("");
        let mut problems = Vec::new();
        let code = match ProductCode::new(field(Some(code_col))) {
            Ok(c) => Some(c),
            Err(e) => {
                problems.push(e.to_string());
                None
            }
        };
        let name = field(Some(name_col)).to_string();
        if name.is_empty() {
            problems.push("the name is empty".into());
        }
        let mut money = |what: &str, s: &str| -> Option<Decimal> {
            match s.parse::<Decimal>() {
                Ok(d) if d >= Decimal::ZERO => Some(d),
                _ => {
                    problems.push(format!("{what} {s:?} is not an amount like 12.50"));
                    None
                }
            }
        };
        let retail_price = match field(retail_col) {
            "" => None,
            s => money("retail_price", s),
        };
        let prices: Vec<Dec> =
            price_cols.iter().map(|c| field(Some(*c))).filter(|s| !s.is_empty()).filter_map(|s| money("price", s)).map(Dec).collect();
        let category = match field(category_col) {
            "" => None,
            s => match protocol::scope::ScopeCode::new(s) {
                Ok(c) => Some(c),
                Err(e) => {
                    problems.push(format!("category: {e}"));
                    None
                }
            },
        };
        if let Some(code) = code {
            if let Some(earlier) = first_line.insert(code, line) {
                problems.push(format!("product {code} is already on line {earlier}"));
            }
            if problems.is_empty() {
                rows.push((code, Product { name, unit: field(unit_col).to_string(), retail_price, prices, category }));
            }
        }
        errors.extend(problems.into_iter().map(|what| CatalogProblem::Row { line, what }));
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// The catalog as CSV (UTF-8, the header `import` reads), ordered by code.
pub fn to_csv<'a>(products: impl IntoIterator<Item = (&'a ProductCode, &'a Product)>) -> String {
    let rows = products.into_iter().map(|(code, p)| {
        let mut row = vec![code.to_string(), p.name.clone(), p.unit.clone(), p.retail_price.map(|d| d.to_string()).unwrap_or_default()];
        row.extend((0..PRICE_LEVELS_MAX).map(|i| p.prices.get(i).map(|d| d.0.to_string()).unwrap_or_default()));
        row.push(p.category.as_ref().map(|c| c.to_string()).unwrap_or_default());
        row
    });
    protocol::sheet::csv(&HEADER, rows)
}

/// UTF-8 (with or without a byte-order mark) as it is; anything else is read as GB18030,
/// the superset of GBK that Chinese Excel writes.
fn decode(bytes: &[u8]) -> String {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::GB18030.decode(bytes).0.into_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excel_file_in_any_column_order_with_a_bom_imports() {
        let file =
            "\u{FEFF}Name,Code,Retail_Price,Price2,Price1\n\"绿茶, 500ml\",6920202888883,3.50,2.80,3.00\n\n矿泉水,6901234567892,,,\n";
        let rows = parse_csv(file.as_bytes()).expect("valid file");
        assert_eq!(rows.len(), 2);
        let (code, tea) = &rows[0];
        assert_eq!(code.as_str(), "6920202888883");
        assert_eq!(tea.name, "绿茶, 500ml");
        assert_eq!(tea.retail_price, Some(Decimal::new(350, 2)));
        // Price levels follow the header's numbers, not the column order.
        assert_eq!(tea.prices.iter().map(|p| p.0.to_string()).collect::<Vec<_>>(), ["3.00", "2.80"]);
        assert_eq!(rows[1].1.retail_price, None);
    }

    #[test]
    fn gbk_from_chinese_excel_is_read_as_gb18030() {
        let (bytes, _, _) = encoding_rs::GB18030.encode("code,name,unit\nP1,矿泉水 550ml,瓶\n");
        assert!(std::str::from_utf8(&bytes).is_err(), "the sample must not be UTF-8");
        let rows = parse_csv(&bytes).expect("valid file");
        assert_eq!((rows[0].1.name.as_str(), rows[0].1.unit.as_str()), ("矿泉水 550ml", "瓶"));
    }

    #[test]
    fn every_problem_is_reported_with_its_line_and_nothing_is_returned() {
        let file = "code,name,retail_price\nP1,ok,1.00\nbad code,x,1.00\nP2,,abc\nP1,again,2.00\n";
        let errors: Vec<String> = parse_csv(file.as_bytes()).expect_err("bad file").iter().map(ToString::to_string).collect();
        assert_eq!(errors.len(), 4, "{errors:?}");
        assert!(errors[0].starts_with("line 3:"), "{errors:?}");
        assert!(errors[1].starts_with("line 4:") && errors[1].contains("name is empty"), "{errors:?}");
        assert!(errors[2].starts_with("line 4:") && errors[2].contains("\"abc\""), "{errors:?}");
        assert!(errors[3].starts_with("line 5:") && errors[3].contains("already on line 2"), "{errors:?}");
        let missing = parse_csv(b"sku,title\nP1,x\n").expect_err("no code column");
        assert!(missing[0].to_string().contains("`code` and `name`"), "{missing:?}");
    }

    #[test]
    fn export_then_import_gives_the_catalog_back() {
        let file = "code,name,unit,retail_price,price1,price2\nA1,\"tea, green\",box,3.50,3.00,2.80\nB2,水,瓶,,,\n";
        let rows = parse_csv(file.as_bytes()).expect("valid");
        let exported = to_csv(rows.iter().map(|(c, p)| (c, p)));
        assert_eq!(parse_csv(exported.as_bytes()).expect("re-import"), rows);
    }
}
