//! Till shifts (交班): a cashier opens a shift with a cash float, sells, counts the drawer
//! and hands over; the shift report is the cash reconciliation (收银对账) of seed 004.
//!
//! A shift stores only what the journal cannot tell: who, the float, when, the journal
//! range it covers and the counted cash. Everything else in the report (documents, totals
//! by payment method, expected cash) is recomputed from the retail documents in that
//! range, so a report can never disagree with the books, and a crash between a sale and
//! the next report loses nothing. Pure code: no I/O, no clock; `pos` does both.

use std::collections::BTreeMap;

use devices::escpos::{Align, Cut};
use devices::receipt::money;
use devices::text::spread;
use devices::EscPos;
use protocol::document::{DocType, Document, PaymentMethod};
use protocol::Decimal;
use serde::{Deserialize, Serialize};

/// Format of [`ShiftRecord`] as stored (sled key `h` + id). Bumped on any change to the
/// record's fields, so an old agent refuses a newer record instead of misreading it.
pub const SHIFT_RECORD_VERSION: u8 = 1;

/// Most documents listed (and read back from the journal) in one report. A busy till
/// sells a few thousand receipts a day; a shift left open for weeks is cut here and the
/// report says so.
pub const SHIFT_DOCUMENTS_MAX: u64 = 50_000;

/// One shift as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftRecord {
    pub version: u8,
    pub id: u64,
    pub cashier: String,
    /// Cash put in the drawer at the start (备用金).
    #[serde(with = "protocol::decimal_serde")]
    pub float: Decimal,
    pub opened_at_unix: u64,
    /// First journal seq that belongs to the shift (head + 1 when it opened).
    pub first_seq: u64,
    pub closed: Option<ShiftClose>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShiftClose {
    pub closed_at_unix: u64,
    /// Last journal seq of the shift (the head when it closed).
    pub last_seq: u64,
    #[serde(with = "protocol::decimal_serde")]
    pub counted_cash: Decimal,
}

/// One retail document of the shift.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShiftDocument {
    pub seq: u64,
    pub number: String,
    pub method: PaymentMethod,
    #[serde(with = "protocol::decimal_serde")]
    pub total: Decimal,
    #[serde(with = "protocol::decimal_serde")]
    pub tendered: Decimal,
    #[serde(with = "protocol::decimal_serde")]
    pub change: Decimal,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MethodTotal {
    pub count: u64,
    #[serde(with = "protocol::decimal_serde")]
    pub total: Decimal,
}

/// The hand-over report. `counted_cash` and `over_short` are absent while the shift is open.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ShiftReport {
    pub shift: u64,
    pub cashier: String,
    pub open: bool,
    pub opened_at: String,
    pub closed_at: Option<String>,
    pub first_seq: u64,
    /// Last journal seq looked at (the head for an open shift).
    pub last_seq: u64,
    pub documents: Vec<ShiftDocument>,
    /// True when the shift held more than [`SHIFT_DOCUMENTS_MAX`] journal entries and
    /// the report stops there.
    pub truncated: bool,
    pub sales_count: u64,
    #[serde(with = "protocol::decimal_serde")]
    pub sales_total: Decimal,
    /// Keyed by `Cash`, `Card`, `Mobile`.
    pub by_method: BTreeMap<String, MethodTotal>,
    #[serde(with = "protocol::decimal_serde")]
    pub float: Decimal,
    /// Cash kept from sales: tendered minus change of cash payments.
    #[serde(with = "protocol::decimal_serde")]
    pub cash_sales: Decimal,
    /// What the drawer should hold: float + cash sales.
    #[serde(with = "protocol::decimal_serde")]
    pub expected_cash: Decimal,
    #[serde(with = "protocol::decimal_serde::option")]
    pub counted_cash: Option<Decimal>,
    /// Counted minus expected: negative is short (短款), positive is over (长款).
    #[serde(with = "protocol::decimal_serde::option")]
    pub over_short: Option<Decimal>,
}

pub fn method_name(m: PaymentMethod) -> &'static str {
    match m {
        PaymentMethod::Cash => "Cash",
        PaymentMethod::Card => "Card",
        PaymentMethod::Mobile => "Mobile",
    }
}

impl ShiftRecord {
    /// The last journal seq the report covers: the close mark, or `head` while open.
    pub fn last_seq(&self, head: u64) -> u64 {
        self.closed.as_ref().map_or(head, |c| c.last_seq)
    }

    /// Builds the report from the journal documents `first_seq ..= last_seq` (any type;
    /// only retail documents with a payment count). `time` turns unix seconds into text.
    pub fn report(&self, last_seq: u64, docs: &[(u64, Document)], truncated: bool, time: impl Fn(u64) -> String) -> ShiftReport {
        let mut documents = Vec::new();
        let mut by_method: BTreeMap<String, MethodTotal> = BTreeMap::new();
        // Zero in cents, so an empty shift reads "0.00" like every other amount.
        let (mut sales_total, mut cash_sales) = (Decimal::new(0, 2), Decimal::new(0, 2));
        for (seq, doc) in docs {
            debug_assert!((self.first_seq..=last_seq).contains(seq), "documents outside the shift");
            let (DocType::Retail, Some(p)) = (doc.header.doc_type, doc.header.payment) else { continue };
            // Only the cashier's own sales are in the drawer: a retail document entered
            // in the back office by someone else (a late receipt, a correction) during the
            // shift took no money through this till.
            if doc.header.operator.as_str() != self.cashier {
                continue;
            }
            let total = doc.total();
            sales_total += total;
            if p.method == PaymentMethod::Cash {
                cash_sales += p.tendered - p.change;
            }
            let m = by_method.entry(method_name(p.method).to_owned()).or_default();
            m.count += 1;
            m.total += total;
            documents.push(ShiftDocument {
                seq: *seq,
                number: doc.header.number.to_string(),
                method: p.method,
                total,
                tendered: p.tendered,
                change: p.change,
            });
        }
        let expected_cash = self.float + cash_sales;
        let counted_cash = self.closed.as_ref().map(|c| c.counted_cash);
        ShiftReport {
            shift: self.id,
            cashier: self.cashier.clone(),
            open: self.closed.is_none(),
            opened_at: time(self.opened_at_unix),
            closed_at: self.closed.as_ref().map(|c| time(c.closed_at_unix)),
            first_seq: self.first_seq,
            last_seq,
            sales_count: documents.len() as u64,
            documents,
            truncated,
            sales_total,
            by_method,
            float: self.float,
            cash_sales,
            expected_cash,
            counted_cash,
            over_short: counted_cash.map(|c| c - expected_cash),
        }
    }
}

/// The report as an ESC/POS job for the receipt printer, `width` characters wide.
pub fn render_report(report: &ShiftReport, store_name: &str, width: usize, cut: bool) -> Vec<u8> {
    let mut p = EscPos::new();
    p.init();
    p.align(Align::Center).bold(true).size(1, 2);
    p.line(store_name);
    p.line("交班报告 Shift report");
    p.size(1, 1).bold(false).align(Align::Left);
    let rule = "-".repeat(width);
    let row = |p: &mut EscPos, l: &str, r: &str| {
        p.line(&spread(l, r, width));
    };
    row(&mut p, "Shift", &report.shift.to_string());
    row(&mut p, "Cashier", &report.cashier);
    row(&mut p, "Opened", &report.opened_at);
    row(&mut p, "Closed", report.closed_at.as_deref().unwrap_or("(open)"));
    row(&mut p, "Journal", &format!("{}..{}", report.first_seq, report.last_seq));
    p.line(&rule);
    row(&mut p, "Sales", &report.sales_count.to_string());
    row(&mut p, "Sales total", &money(report.sales_total));
    for (method, t) in &report.by_method {
        row(&mut p, &format!("  {method} x{}", t.count), &money(t.total));
    }
    p.line(&rule);
    row(&mut p, "Float", &money(report.float));
    row(&mut p, "Cash sales", &money(report.cash_sales));
    p.bold(true);
    row(&mut p, "Expected cash", &money(report.expected_cash));
    p.bold(false);
    if let (Some(counted), Some(diff)) = (report.counted_cash, report.over_short) {
        row(&mut p, "Counted cash", &money(counted));
        let word = if diff < Decimal::ZERO {
            "Short"
        } else if diff > Decimal::ZERO {
            "Over"
        } else {
            "Balanced"
        };
        p.bold(true);
        row(&mut p, word, &money(diff));
        p.bold(false);
    }
    if report.truncated {
        p.line(&format!("(first {SHIFT_DOCUMENTS_MAX} journal entries only)"));
    }
    if cut {
        p.feed(4).cut(Cut::Partial);
    }
    p.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::codes::{BranchCode, OperatorId, ProductCode, WarehouseCode};
    use protocol::date::BusinessDate;
    use protocol::document::{Draft, Line, Payment};
    use rust_decimal_macros::dec;

    fn retail(serial: u32, price: Decimal, method: PaymentMethod, tendered: Decimal) -> Document {
        let lines = vec![Line::priced(ProductCode::new("6901234567892").expect("p"), dec!(1), price)];
        Draft {
            doc_type: DocType::Retail,
            date: BusinessDate::parse("2026-06-09").expect("date"),
            operator: OperatorId::new("sh-li").expect("op"),
            warehouse: WarehouseCode::new("SH01").expect("wh"),
            counterparty: None,
            memo: String::new(),
            payment: Some(Payment { method, tendered, change: tendered - price }),
            lines,
            ext: Default::default(),
        }
        .number(BranchCode::new("SH").expect("b"), serial)
        .expect("valid retail draft")
    }

    #[test]
    fn report_counts_cash_net_of_change_and_over_short() {
        let shift = ShiftRecord {
            version: SHIFT_RECORD_VERSION,
            id: 1,
            cashier: "sh-li".into(),
            float: dec!(200.00),
            opened_at_unix: 0,
            first_seq: 3,
            closed: Some(ShiftClose { closed_at_unix: 60, last_seq: 6, counted_cash: dec!(219.50) }),
        };
        let docs = vec![
            (3, retail(1, dec!(12.50), PaymentMethod::Cash, dec!(50.00))),
            (4, retail(2, dec!(8.00), PaymentMethod::Card, dec!(8.00))),
            (6, retail(3, dec!(7.50), PaymentMethod::Cash, dec!(7.50))),
        ];
        let r = shift.report(6, &docs, false, |t| format!("t{t}"));
        assert_eq!(r.sales_count, 3);
        assert_eq!(r.sales_total, dec!(28.00));
        assert_eq!(r.cash_sales, dec!(20.00));
        assert_eq!(r.expected_cash, dec!(220.00));
        assert_eq!(r.over_short, Some(dec!(-0.50)));
        assert_eq!(r.by_method["Card"], MethodTotal { count: 1, total: dec!(8.00) });
        assert_eq!(r.by_method["Cash"].count, 2);
        assert_eq!((r.opened_at.as_str(), r.closed_at.as_deref()), ("t0", Some("t60")));
        let job = render_report(&r, "SH", 32, true);
        let text = String::from_utf8_lossy(&job);
        assert!(text.contains("220.00") && text.contains("-0.50") && text.contains("Short"), "{text}");
    }

    /// Issue 10: back-office retail documents do not count into a cashier's drawer. The
    /// shift of sh-li (float 100.00) sells 12.50 cash; meanwhile the back office posts a
    /// 30.00 cash retail document entered by sh-wang. Expected cash 100.00 + 12.50 =
    /// 112.50, one sale of 12.50.
    #[test]
    fn back_office_retail_documents_are_not_in_the_drawer() {
        let shift = ShiftRecord {
            version: SHIFT_RECORD_VERSION,
            id: 2,
            cashier: "sh-li".into(),
            float: dec!(100.00),
            opened_at_unix: 0,
            first_seq: 1,
            closed: None,
        };
        let mut back_office = retail(2, dec!(30.00), PaymentMethod::Cash, dec!(30.00));
        back_office.header.operator = OperatorId::new("sh-wang").expect("op");
        let docs = vec![(1, retail(1, dec!(12.50), PaymentMethod::Cash, dec!(12.50))), (2, back_office)];
        let r = shift.report(2, &docs, false, |t| format!("t{t}"));
        assert_eq!((r.sales_count, r.sales_total, r.expected_cash), (1, dec!(12.50), dec!(112.50)));
    }

    #[test]
    fn record_round_trips_through_a_sealed_record() {
        let shift = ShiftRecord {
            version: SHIFT_RECORD_VERSION,
            id: 7,
            cashier: "李娜".into(),
            float: dec!(100.00),
            opened_at_unix: 1_781_000_000,
            first_seq: 1,
            closed: None,
        };
        let sealed = protocol::record::seal(&shift);
        assert_eq!(protocol::record::open::<ShiftRecord>(&"h/7", &sealed).expect("opens"), shift);
    }
}
