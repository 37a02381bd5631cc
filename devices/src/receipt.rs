//! The customer receipt: what a sale looks like on paper, and the store's layout choices.
//!
//! [`render`] is a pure function of a [`Receipt`] (numbers the caller already computed)
//! and a [`ReceiptLayout`] (store configuration) to ESC/POS bytes. It adds nothing up and
//! reads no clock: totals, change and the printed date come in as they are to be printed,
//! so the receipt can never disagree with the saved document.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::escpos::{Align, Cut, DrawerPulse, EscPos, EscPosError, QrStyle};
use crate::text::{self, columns, pad_left, pad_right, spread, wrap};

/// Item lines one receipt may hold; a sale longer than this is split by the caller.
pub const RECEIPT_LINES_MAX: usize = 1000;

/// Header or footer lines printed; more in the config are ignored.
pub const LAYOUT_LINES_MAX: usize = 16;

/// Lines fed before the cut so the last printed line clears the cutter blade.
const FEED_BEFORE_CUT_LINES: u8 = 4;

// Numbers columns of an item row, in cells. The name takes what is left of the paper
// width; when it does not fit, it gets rows of its own above the numbers.
const QTY_COLUMNS: usize = 8;
const PRICE_COLUMNS: usize = 10;
const AMOUNT_COLUMNS: usize = 11;
const NUMBER_COLUMNS: usize = QTY_COLUMNS + PRICE_COLUMNS + AMOUNT_COLUMNS;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    #[error("the receipt has {lines} item lines; at most {lines_max} print on one receipt")]
    TooManyLines { lines: usize, lines_max: usize },
    #[error("QR code of the document number: {0}")]
    Qr(#[from] EscPosError),
}

/// One item line, as the document holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiptLine {
    pub name: String,
    pub quantity: Decimal,
    pub unit_price: Decimal,
    pub amount: Decimal,
}

/// One tender: "Cash 20.00", "WeChat Pay 15.40".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub method: String,
    pub amount: Decimal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberPoints {
    pub earned: Decimal,
    pub balance: Decimal,
}

/// What one receipt says. Every number is printed as given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub store_name: String,
    pub document_number: String,
    /// Date and time as they should appear; this crate never reads the clock.
    pub issued_at: String,
    pub cashier: String,
    pub lines: Vec<ReceiptLine>,
    pub total: Decimal,
    pub payments: Vec<Payment>,
    pub change: Decimal,
    pub points: Option<MemberPoints>,
}

/// Characters per line of Font A: 58 mm paper has 32, 76 mm has 42, 80 mm has 48.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub enum PaperWidth {
    Chars32,
    Chars42,
    #[default]
    Chars48,
}

impl PaperWidth {
    pub fn columns(self) -> usize {
        match self {
            PaperWidth::Chars32 => 32,
            PaperWidth::Chars42 => 42,
            PaperWidth::Chars48 => 48,
        }
    }
}

impl TryFrom<u8> for PaperWidth {
    type Error = String;
    fn try_from(chars: u8) -> Result<Self, String> {
        match chars {
            32 => Ok(PaperWidth::Chars32),
            42 => Ok(PaperWidth::Chars42),
            48 => Ok(PaperWidth::Chars48),
            other => Err(format!("paper width {other} is not supported; use 32 (58 mm), 42 or 48 (80 mm)")),
        }
    }
}

impl From<PaperWidth> for u8 {
    fn from(w: PaperWidth) -> u8 {
        match w {
            PaperWidth::Chars32 => 32,
            PaperWidth::Chars42 => 42,
            PaperWidth::Chars48 => 48,
        }
    }
}

/// The words printed next to the numbers, so a store can print them in its language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiptLabels {
    pub document: String,
    pub date: String,
    pub cashier: String,
    pub item: String,
    pub quantity: String,
    pub unit_price: String,
    pub amount: String,
    pub total: String,
    pub change: String,
    pub points_earned: String,
    pub points_balance: String,
}

impl Default for ReceiptLabels {
    fn default() -> Self {
        ReceiptLabels {
            document: "No.".into(),
            date: "Date".into(),
            cashier: "Cashier".into(),
            item: "Item".into(),
            quantity: "Qty".into(),
            unit_price: "Price".into(),
            amount: "Amount".into(),
            total: "TOTAL".into(),
            change: "Change".into(),
            points_earned: "Points earned".into(),
            points_balance: "Points balance".into(),
        }
    }
}

impl ReceiptLabels {
    /// Simplified Chinese labels, as most stores print them.
    pub fn chinese() -> ReceiptLabels {
        ReceiptLabels {
            document: "单号".into(),
            date: "日期".into(),
            cashier: "收银员".into(),
            item: "品名".into(),
            quantity: "数量".into(),
            unit_price: "单价".into(),
            amount: "金额".into(),
            total: "合计".into(),
            change: "找零".into(),
            points_earned: "本次积分".into(),
            points_balance: "积分余额".into(),
        }
    }
}

/// The store's choices for its receipts; lives in the till's TOML config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReceiptLayout {
    pub width_chars: PaperWidth,
    /// Centred under the store name: address, phone, tax number.
    pub header_lines: Vec<String>,
    /// Centred at the bottom: thanks, return policy.
    pub footer_lines: Vec<String>,
    /// Print the document number as a QR code, for returns and reprints.
    pub show_qr: bool,
    pub cut: bool,
    /// Open the drawer from the receipt job itself, right after ESC @, so the drawer
    /// opens while the receipt prints.
    pub kick_drawer: bool,
    pub drawer_pulse: DrawerPulse,
    pub labels: ReceiptLabels,
}

impl Default for ReceiptLayout {
    fn default() -> Self {
        ReceiptLayout {
            width_chars: PaperWidth::Chars48,
            header_lines: Vec::new(),
            footer_lines: Vec::new(),
            show_qr: false,
            cut: true,
            kick_drawer: false,
            drawer_pulse: DrawerPulse::default(),
            labels: ReceiptLabels::default(),
        }
    }
}

/// A price or amount with at least two decimals; more are kept, never rounded away.
pub fn money(d: Decimal) -> String {
    let mut d = d;
    if d.scale() < 2 {
        d.rescale(2);
    }
    d.to_string()
}

/// A quantity without trailing zeros: 2, 1.235.
pub fn quantity(d: Decimal) -> String {
    d.normalize().to_string()
}

/// The ESC/POS job for one receipt.
pub fn render(receipt: &Receipt, layout: &ReceiptLayout) -> Result<Vec<u8>, ReceiptError> {
    if receipt.lines.len() > RECEIPT_LINES_MAX {
        return Err(ReceiptError::TooManyLines { lines: receipt.lines.len(), lines_max: RECEIPT_LINES_MAX });
    }
    let width = layout.width_chars.columns();
    let labels = &layout.labels;
    let mut p = EscPos::new();
    p.init();
    if layout.kick_drawer {
        p.kick_drawer(layout.drawer_pulse);
    }

    // Store name, bold and double size: half as many cells fit on a line.
    p.align(Align::Center).bold(true).size(2, 2);
    for part in wrap(&text::clean(&receipt.store_name), width / 2) {
        p.line(part);
    }
    p.size(1, 1).bold(false);
    for header in layout.header_lines.iter().take(LAYOUT_LINES_MAX) {
        for part in wrap(&text::clean(header), width) {
            p.line(part);
        }
    }

    p.align(Align::Left);
    p.line(&spread(&labels.document, &receipt.document_number, width));
    p.line(&spread(&labels.date, &receipt.issued_at, width));
    p.line(&spread(&labels.cashier, &receipt.cashier, width));
    let rule = "-".repeat(width);
    p.line(&rule);
    for row in item_rows(&labels.item, &labels.quantity, &labels.unit_price, &labels.amount, width) {
        p.line(&row);
    }
    p.line(&rule);
    for line in &receipt.lines {
        let (qty, price, amount) = (quantity(line.quantity), money(line.unit_price), money(line.amount));
        for row in item_rows(&line.name, &qty, &price, &amount, width) {
            p.line(&row);
        }
    }
    p.line(&rule);

    // Total in bold double height: double width would halve the columns.
    p.bold(true).size(1, 2);
    p.line(&spread(&labels.total, &money(receipt.total), width));
    p.size(1, 1).bold(false);
    for payment in &receipt.payments {
        p.line(&spread(&payment.method, &money(payment.amount), width));
    }
    p.line(&spread(&labels.change, &money(receipt.change), width));
    if let Some(points) = &receipt.points {
        p.line(&spread(&labels.points_earned, &quantity(points.earned), width));
        p.line(&spread(&labels.points_balance, &quantity(points.balance), width));
    }

    p.align(Align::Center);
    if !layout.footer_lines.is_empty() {
        p.line("");
    }
    for footer in layout.footer_lines.iter().take(LAYOUT_LINES_MAX) {
        for part in wrap(&text::clean(footer), width) {
            p.line(part);
        }
    }
    if layout.show_qr {
        p.qr(&receipt.document_number, QrStyle::default())?;
        p.line("");
    }
    if layout.cut {
        p.feed(FEED_BEFORE_CUT_LINES).cut(Cut::Partial);
    }
    Ok(p.into_bytes())
}

/// Rows for one item: name and numbers on one row when the name fits beside the numbers,
/// else the name wrapped on rows of its own and the numbers under it. Every row is at
/// most `width` cells.
fn item_rows(name: &str, qty: &str, price: &str, amount: &str, width: usize) -> Vec<String> {
    let name = text::clean(name);
    let numbers_fit = columns(qty) < QTY_COLUMNS && columns(price) < PRICE_COLUMNS && columns(amount) < AMOUNT_COLUMNS;
    if !numbers_fit {
        // Very large numbers: give up the columns, keep every digit.
        let mut rows: Vec<String> = wrap(&name, width).into_iter().map(str::to_owned).collect();
        let left = format!("{qty} x {price}");
        if columns(&left) + 1 + columns(amount) <= width {
            rows.push(spread(&left, amount, width));
        } else {
            rows.extend(wrap(&left, width).into_iter().map(str::to_owned));
            rows.extend(wrap(amount, width).into_iter().map(|s| pad_left(s, width)));
        }
        return rows;
    }
    let numbers = format!("{}{}{}", pad_left(qty, QTY_COLUMNS), pad_left(price, PRICE_COLUMNS), pad_left(amount, AMOUNT_COLUMNS));
    let name_columns = width - NUMBER_COLUMNS;
    if columns(&name) <= name_columns {
        return vec![format!("{}{numbers}", pad_right(&name, name_columns))];
    }
    let mut rows: Vec<String> = wrap(&name, width).into_iter().map(str::to_owned).collect();
    rows.push(format!("{}{numbers}", " ".repeat(name_columns)));
    rows
}

/// The sale printed by [`sample_receipt`]: Chinese and ASCII text, a weighed item,
/// member points.
pub fn sample_receipt_data() -> Receipt {
    Receipt {
        store_name: "好邻居便利店".into(),
        document_number: "S-012-0315-007".into(),
        issued_at: "2025-03-15 14:32".into(),
        cashier: "Li Na (07)".into(),
        lines: vec![
            ReceiptLine {
                name: "可口可乐 330ml".into(),
                quantity: Decimal::new(2, 0),
                unit_price: Decimal::new(350, 2),
                amount: Decimal::new(700, 2),
            },
            ReceiptLine {
                name: "Bananas kg".into(),
                quantity: Decimal::new(1235, 3),
                unit_price: Decimal::new(680, 2),
                amount: Decimal::new(840, 2),
            },
        ],
        total: Decimal::new(1540, 2),
        payments: vec![Payment { method: "Cash".into(), amount: Decimal::new(2000, 2) }],
        change: Decimal::new(460, 2),
        points: Some(MemberPoints { earned: Decimal::new(15, 0), balance: Decimal::new(1280, 0) }),
    }
}

/// The layout used by [`sample_receipt`]: 58 mm paper, QR, cut and drawer kick.
pub fn sample_layout() -> ReceiptLayout {
    ReceiptLayout {
        width_chars: PaperWidth::Chars32,
        header_lines: vec!["88 Chaoyang Rd, Branch 012".into()],
        footer_lines: vec!["谢谢惠顾".into()],
        show_qr: true,
        cut: true,
        kick_drawer: true,
        drawer_pulse: DrawerPulse::default(),
        labels: ReceiptLabels::default(),
    }
}

/// A complete sample receipt job, for `branch-agent receipt --sample --out FILE` and for
/// checking a new printer.
pub fn sample_receipt() -> Vec<u8> {
    render(&sample_receipt_data(), &sample_layout()).expect("the sample has 2 lines and a short document number")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn money_keeps_cents() {
        assert_eq!(money(Decimal::new(7, 0)), "7.00");
        assert_eq!(money(Decimal::new(350, 2)), "3.50");
        assert_eq!(money(Decimal::new(1235, 3)), "1.235");
        assert_eq!(money(Decimal::new(-460, 2)), "-4.60");
        assert_eq!(quantity(Decimal::new(2000, 3)), "2");
    }

    #[test]
    fn item_rows_are_width_aware() {
        // 48 columns: 19 for the name. Eight CJK characters are 16 cells and fit.
        let rows = item_rows("农夫山泉饮用天然", "2", "1.50", "3.00", 48);
        assert_eq!(rows, vec![format!("农夫山泉饮用天然{}       2      1.50       3.00", " ".repeat(3))]);
        assert!(rows.iter().all(|r| columns(r) == 48));

        // Ten CJK characters are 20 cells: the name gets its own row.
        let rows = item_rows("农夫山泉饮用天然水瓶", "2", "1.50", "3.00", 48);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], "农夫山泉饮用天然水瓶");
        assert_eq!(columns(&rows[1]), 48);

        // 32 columns: a long CJK name wraps at 32 cells without splitting a character.
        let name = "康师傅红烧牛肉面五连包家庭装特惠大份量版";
        let rows = item_rows(name, "1", "15.90", "15.90", 32);
        assert_eq!(rows[0], "康师傅红烧牛肉面五连包家庭装特惠");
        assert_eq!(rows[1], "大份量版");
        assert!(rows.iter().all(|r| columns(r) <= 32), "{rows:?}");
    }

    #[test]
    fn huge_numbers_keep_every_digit() {
        let rows = item_rows("Gold bar", "1000", "12345678.00", "12345678000.00", 32);
        assert!(rows.iter().any(|r| r.contains("12345678000.00")), "{rows:?}");
        assert!(rows.iter().all(|r| columns(r) <= 32), "{rows:?}");
    }

    #[test]
    fn too_many_lines_is_refused() {
        let mut r = sample_receipt_data();
        r.lines = vec![r.lines[0].clone(); RECEIPT_LINES_MAX + 1];
        assert!(matches!(render(&r, &sample_layout()), Err(ReceiptError::TooManyLines { .. })));
    }

    /// Printed lines of a job as (text, width multiplier), commands stripped. Knows only
    /// the commands [`render`] emits.
    fn printed_lines(job: &[u8]) -> Vec<(String, usize)> {
        let (mut lines, mut line, mut magnify, mut i) = (Vec::new(), Vec::new(), 1, 0);
        let mut line_magnify = 1;
        while i < job.len() {
            match job[i] {
                0x1B if job[i + 1] == b'@' => i += 2,
                0x1B if job[i + 1] == b'p' => i += 5,
                0x1B => i += 3,
                0x1D if job[i + 1] == b'!' => {
                    magnify = usize::from(job[i + 2] >> 4) + 1;
                    i += 3;
                }
                0x1D if job[i + 1] == b'(' => i += 5 + usize::from(job[i + 3]) + 256 * usize::from(job[i + 4]),
                0x1D => i += 3,
                0x1C => i += 2,
                b'\n' => {
                    let (text, _, _) = encoding_rs::GB18030.decode(&line);
                    lines.push((text.into_owned(), line_magnify.max(magnify)));
                    line.clear();
                    line_magnify = 1;
                    i += 1;
                }
                b => {
                    line.push(b);
                    line_magnify = line_magnify.max(magnify);
                    i += 1;
                }
            }
        }
        lines
    }

    #[test]
    fn every_printed_line_fits_the_paper() {
        let mut receipt = sample_receipt_data();
        receipt.store_name = "好邻居便利店朝阳路八十八号分店".into();
        receipt.lines[1].name = "康师傅红烧牛肉面五连包家庭装特惠大份量版".into();
        for width in [PaperWidth::Chars32, PaperWidth::Chars42, PaperWidth::Chars48] {
            let layout = ReceiptLayout { width_chars: width, labels: ReceiptLabels::chinese(), ..sample_layout() };
            let lines = printed_lines(&render(&receipt, &layout).expect("renders"));
            assert!(lines.len() > 20, "{lines:?}");
            for (text, magnify) in &lines {
                assert!(columns(text) * magnify <= width.columns(), "{width:?}: {text:?} x{magnify}");
            }
            assert!(lines.iter().any(|(t, _)| t.starts_with("合计")), "{lines:?}");
        }
    }
}
