//! Point of sale: the store's till (零售, LS) on top of the branch journal and the
//! `devices` crate.
//!
//! One sale: scan or type codes (or weigh) into the cart → the customer display shows the
//! item and the running total → pay (method, tendered, change) → the retail document is
//! posted with `Store::post` (durable before anything else happens; works offline and is
//! forwarded to HQ like any document) → the display shows the change → the receipt prints
//! → the drawer opens for cash. Shifts (交班) are in `shift`.
//!
//! Invariant: a device never fails a sale. Peripherals are touched only after the post
//! returned; their errors come back as `warnings`, are kept as the last device error in
//! `/api/pos/status`, and the receipt can be printed again from the journal entry
//! (`POST /api/pos/reprint/{seq}`). Before payment only the scale can refuse a step, and
//! the sale goes on (type the weight instead).
//!
//! One till per agent. The cart and the open shift sit behind one async mutex held for a
//! whole till operation (including its device I/O), so two requests can never pay the same
//! cart and the display shows steps in order. Device calls block up to their configured
//! deadline, so they run on blocking threads; the scanner has its own `Devices` and thread
//! so waiting for a scan never holds up the printer. The cart is memory only: an agent
//! restart empties it, and nothing of it was posted.
//!
//! Clock: the business date of a sale is today's date at `utc_offset_minutes` east of UTC
//! (default 0, i.e. UTC; Chinese stores set 480), unless the pay request gives `date`.
//! `protocol` never reads the clock; this module does, and hands the date in.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use devices::barcode::BarcodeError;
use devices::config::{Connection, DrawerConnection};
use devices::receipt::money;
use devices::text::spread;
use devices::{DeviceError, Devices, DevicesConfig, DisplayState, InputError, Receipt, ReceiptLine, Scanned, WeighedValue};
use protocol::codes::{OperatorId, ProductCode, WarehouseCode};
use protocol::date::BusinessDate;
use protocol::document::{round_money, DocType, Document, Draft, Line, Payment, PaymentMethod, DOC_LINES_MAX, MONEY_SCALE, QTY_SCALE_MAX};
use protocol::profile::Product;
use protocol::Decimal;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tracing::{info, warn};

use crate::config::AgentConfig;
use crate::forwarder::Shared;
use crate::shift::{self, ShiftRecord, SHIFT_DOCUMENTS_MAX, SHIFT_RECORD_VERSION};
use crate::store::{PostFailure, Store};

/// Lines one cart may hold: what fits one document and one printed receipt.
pub const CART_LINES_MAX: usize = 500;
const _: () = assert!(CART_LINES_MAX <= DOC_LINES_MAX && CART_LINES_MAX <= devices::receipt::RECEIPT_LINES_MAX);

/// Largest quantity one cart line may reach; bounds amounts far below overflow.
pub const LINE_QTY_MAX: i64 = 99_999;

/// Pause after a scanner failure (unplugged, cannot open) before trying again, so a
/// missing scanner costs one attempt a second, not a busy loop.
const SCANNER_RETRY_MS: u64 = 1000;

/// Neighbouring quantities (in 0.0001 steps) tried when turning a price label into a
/// weight at the catalog price.
const WEIGHT_SEARCH_STEPS: i64 = 5;

/// Largest business-date offset from UTC accepted, in minutes (UTC+14 is the furthest zone).
pub const UTC_OFFSET_MINUTES_MAX: i32 = 14 * 60;

/// `[pos]` in agent.toml.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PosConfig {
    /// Warehouse the till sells from. Default: the first warehouse (in code order) of the
    /// branch's scope as HQ sent it.
    pub warehouse: Option<WarehouseCode>,
    /// Printed at the top of receipts and shift reports. Default: the branch name from HQ.
    pub store_name: Option<String>,
    /// Minutes east of UTC of the store's business day and printed times (China: 480).
    /// Default 0: sales are dated by today's UTC date.
    pub utc_offset_minutes: i32,
    /// How payment methods are printed.
    pub payment_labels: PaymentLabels,
}

impl PosConfig {
    pub fn check(&self) -> anyhow::Result<()> {
        if self.utc_offset_minutes.abs() > UTC_OFFSET_MINUTES_MAX {
            anyhow::bail!("utc_offset_minutes = {} is beyond ±{UTC_OFFSET_MINUTES_MAX} (UTC+8 is 480)", self.utc_offset_minutes);
        }
        Ok(())
    }
}

/// Words printed for each payment method (receipts, shift reports).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PaymentLabels {
    pub cash: String,
    pub card: String,
    pub mobile: String,
}

impl Default for PaymentLabels {
    fn default() -> Self {
        PaymentLabels { cash: "Cash".into(), card: "Card".into(), mobile: "Mobile".into() }
    }
}

impl PaymentLabels {
    fn of(&self, m: PaymentMethod) -> &str {
        match m {
            PaymentMethod::Cash => &self.cash,
            PaymentMethod::Card => &self.card,
            PaymentMethod::Mobile => &self.mobile,
        }
    }
}

/// Why a till step was refused; each maps to one HTTP status and its text is for the cashier.
#[derive(Debug, thiserror::Error)]
pub enum TillError {
    /// Malformed request (400).
    #[error("{0}")]
    BadRequest(String),
    /// The input cannot be sold as is: misread, unknown product, no price, underpaid, or
    /// refused by the books (422). Nothing changed.
    #[error("{0}")]
    Refused(String),
    /// The till is not in a state for this step: no shift, empty cart (409).
    #[error("{0}")]
    State(String),
    /// A device this step needs failed (the scale, a reprint) (503). The sale goes on.
    #[error("{0}")]
    Device(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for TillError {
    fn into_response(self) -> Response {
        let status = match &self {
            TillError::BadRequest(_) => StatusCode::BAD_REQUEST,
            TillError::Refused(_) => StatusCode::UNPROCESSABLE_ENTITY,
            TillError::State(_) => StatusCode::CONFLICT,
            TillError::Device(_) => StatusCode::SERVICE_UNAVAILABLE,
            TillError::NotFound(_) => StatusCode::NOT_FOUND,
            TillError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        };
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

fn internal(e: impl std::fmt::Display) -> TillError {
    TillError::Internal(e.to_string())
}

// ---------------------------------------------------------------------------------------
// Clock: unix seconds → civil date and time at a fixed offset.

pub fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// A civil (proleptic Gregorian) date and time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
}

/// `unix` seconds at `offset_minutes` east of UTC. Days → date is H. Hinnant's
/// `civil_from_days`, exact for every date.
pub fn civil(unix: u64, offset_minutes: i32) -> Civil {
    let secs = i64::try_from(unix).unwrap_or(i64::MAX / 2) + i64::from(offset_minutes) * 60;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let small = |v: i64| u32::try_from(v).expect("day, month, hour and minute are small and positive");
    Civil { year, month: small(month), day: small(day), hour: small(rest / 3600), minute: small(rest % 3600 / 60) }
}

impl Civil {
    pub fn date(&self) -> Result<BusinessDate, TillError> {
        let bad = || {
            TillError::State(format!(
                "the system clock says {:04}-{:02}-{:02}, which is not a business date: set the clock, or give \"date\"",
                self.year, self.month, self.day
            ))
        };
        let year = u16::try_from(self.year).map_err(|_| bad())?;
        BusinessDate::new(year, u8::try_from(self.month).map_err(|_| bad())?, u8::try_from(self.day).map_err(|_| bad())?).map_err(|_| bad())
    }

    pub fn text(&self) -> String {
        format!("{:04}-{:02}-{:02} {:02}:{:02}", self.year, self.month, self.day, self.hour, self.minute)
    }
}

// ---------------------------------------------------------------------------------------
// The cart: pure and unit-tested.

/// One line of the cart.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CartLine {
    pub product: ProductCode,
    pub name: String,
    #[serde(with = "protocol::decimal_serde")]
    pub qty: Decimal,
    #[serde(with = "protocol::decimal_serde")]
    pub unit_price: Decimal,
    #[serde(with = "protocol::decimal_serde")]
    pub amount: Decimal,
    /// How it got here: the barcode scanned, the code typed, "scale", a label code.
    pub source: String,
    /// Counted items: another scan of the same product at the same price adds to this line.
    /// Weighed items always get a line of their own.
    #[serde(skip)]
    pub counted: bool,
}

#[derive(Clone, Debug, Default)]
pub struct Cart {
    lines: Vec<CartLine>,
}

impl Cart {
    pub fn lines(&self) -> &[CartLine] {
        &self.lines
    }

    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Sum of line amounts; each amount is already rounded to the cent, as the document's.
    pub fn total(&self) -> Decimal {
        self.lines.iter().map(|l| l.amount).sum()
    }

    /// Adds a line (or adds to the same counted product's line). Returns the 0-based line
    /// index and the amount this step added.
    pub fn add(&mut self, line: CartLine) -> Result<(usize, Decimal), TillError> {
        let qty_max = Decimal::from(LINE_QTY_MAX);
        if line.counted {
            if let Some(i) = self.lines.iter().position(|l| l.counted && l.product == line.product && l.unit_price == line.unit_price) {
                let old = &self.lines[i];
                let qty = old.qty + line.qty;
                if qty > qty_max {
                    return Err(TillError::Refused(format!("{} would reach quantity {qty}; at most {LINE_QTY_MAX} per line", old.name)));
                }
                let amount = Line::priced(old.product, qty, old.unit_price).amount;
                let added = amount - old.amount;
                let l = &mut self.lines[i];
                l.qty = qty;
                l.amount = amount;
                return Ok((i, added));
            }
        }
        if line.qty > qty_max {
            return Err(TillError::Refused(format!("quantity {} is above {LINE_QTY_MAX}", line.qty)));
        }
        if self.lines.len() >= CART_LINES_MAX {
            return Err(TillError::Refused(format!(
                "the cart holds {CART_LINES_MAX} lines, the most one receipt takes: pay this part first"
            )));
        }
        let added = line.amount;
        self.lines.push(line);
        Ok((self.lines.len() - 1, added))
    }

    /// Removes line `n` (1-based, as shown).
    pub fn void(&mut self, n: usize) -> Result<CartLine, TillError> {
        if n == 0 || n > self.lines.len() {
            return Err(TillError::NotFound(format!("the cart has no line {n} (it has {})", self.lines.len())));
        }
        Ok(self.lines.remove(n - 1))
    }

    pub fn clear(&mut self) {
        self.lines.clear();
    }

    pub fn draft(&self, date: BusinessDate, operator: OperatorId, warehouse: WarehouseCode, payment: Payment) -> Draft {
        Draft {
            doc_type: DocType::Retail,
            date,
            operator,
            warehouse,
            counterparty: None,
            memo: String::new(),
            payment: Some(payment),
            lines: self
                .lines
                .iter()
                .map(|l| Line { product: l.product, role: Default::default(), qty: l.qty, unit_price: l.unit_price, amount: l.amount })
                .collect(),
            ext: Default::default(),
        }
    }
}

/// The payment for `total`: change for cash, the exact total for card and mobile.
pub fn take_payment(method: PaymentMethod, tendered: Option<Decimal>, total: Decimal) -> Result<Payment, TillError> {
    let mut tendered = match (method, tendered) {
        (PaymentMethod::Cash, None) => {
            return Err(TillError::Refused(format!("say how much cash the customer gave (\"tendered\"); the total is {}", money(total))))
        }
        (_, None) => total,
        (_, Some(t)) => t,
    };
    if tendered.scale() > MONEY_SCALE {
        return Err(TillError::Refused(format!("tendered {tendered} has more than {MONEY_SCALE} decimals")));
    }
    if tendered < total {
        return Err(TillError::Refused(format!(
            "tendered {} is less than the total {}: take {} more",
            money(tendered),
            money(total),
            money(total - tendered)
        )));
    }
    if method != PaymentMethod::Cash && tendered != total {
        return Err(TillError::Refused(format!(
            "a {} payment takes exactly the total {}; change is given only for cash",
            shift::method_name(method),
            money(total)
        )));
    }
    tendered.rescale(MONEY_SCALE);
    Ok(Payment { method, tendered, change: tendered - total })
}

pub fn parse_method(s: &str) -> Option<PaymentMethod> {
    match s.trim().to_ascii_lowercase().as_str() {
        "cash" | "现金" => Some(PaymentMethod::Cash),
        "card" | "银行卡" => Some(PaymentMethod::Card),
        "mobile" | "wechat" | "alipay" | "移动支付" => Some(PaymentMethod::Mobile),
        _ => None,
    }
}

/// The cashier's words for a misread barcode.
pub fn misread_message(e: &BarcodeError) -> String {
    match e {
        BarcodeError::CheckDigit { code, expected, .. } => {
            format!("barcode {code} misread (check digit should be {expected}): scan again or type the code")
        }
        BarcodeError::PriceCheckDigit { code, expected, .. } => {
            format!("barcode {code} misread (price check digit should be {expected}): scan again or type the code")
        }
        other => format!("{other}: scan again or type the code"),
    }
}

fn check_qty(qty: Decimal) -> Result<Decimal, TillError> {
    if qty <= Decimal::ZERO {
        return Err(TillError::Refused(format!("quantity {qty} must be more than 0")));
    }
    if qty.scale() > QTY_SCALE_MAX {
        return Err(TillError::Refused(format!("quantity {qty} has more than {QTY_SCALE_MAX} decimals")));
    }
    if qty > Decimal::from(LINE_QTY_MAX) {
        return Err(TillError::Refused(format!("quantity {qty} is above {LINE_QTY_MAX}")));
    }
    Ok(qty)
}

/// A catalog product with its till price.
fn priced<'a>(code: &str, catalog: &'a BTreeMap<ProductCode, Product>) -> Result<(ProductCode, &'a Product, Decimal), TillError> {
    let unknown = || TillError::Refused(format!("product {code} is not in HQ's catalog: set the item aside and ask HQ to add it"));
    let pc = ProductCode::new(code).map_err(|_| unknown())?;
    let product = catalog.get(&pc).ok_or_else(unknown)?;
    let price = product.retail_price.ok_or_else(|| {
        TillError::Refused(format!(
            "product {code} ({}) has no retail price; ask HQ to set one, or sell it from the back office",
            product.name
        ))
    })?;
    Ok((pc, product, price))
}

/// The weight that a label scale priced at `label_price` at `unit_price`, to 0.0001:
/// the quantity whose rounded amount is exactly the label price, so the document's
/// amount rule holds and the customer pays what the label says.
pub fn weight_for_price(label_price: Decimal, unit_price: Decimal) -> Option<Decimal> {
    if unit_price <= Decimal::ZERO || label_price <= Decimal::ZERO {
        return None;
    }
    let step = Decimal::new(1, QTY_SCALE_MAX);
    let guess = (label_price / unit_price).round_dp(QTY_SCALE_MAX);
    (0..=WEIGHT_SEARCH_STEPS)
        .flat_map(|i| [guess + step * Decimal::from(i), guess - step * Decimal::from(i)])
        .find(|q| *q > Decimal::ZERO && q.checked_mul(unit_price).map(round_money) == Some(label_price))
        .map(|q| q.normalize())
}

/// What a scanned or typed code puts in the cart. `qty` is for counted items (default 1)
/// or a weight typed by hand; weighed labels carry their own.
pub fn resolve(scanned: &Scanned, qty: Option<Decimal>, catalog: &BTreeMap<ProductCode, Product>) -> Result<CartLine, TillError> {
    let counted_line = |code: &str, source: &str| -> Result<CartLine, TillError> {
        let (product, p, price) = priced(code, catalog)?;
        let qty = check_qty(qty.unwrap_or(Decimal::ONE))?;
        let amount = Line::priced(product, qty, price).amount;
        Ok(CartLine { product, name: p.name.clone(), qty, unit_price: price, amount, source: source.to_owned(), counted: true })
    };
    match scanned {
        Scanned::Product(gtin) => {
            let code = gtin.as_str();
            // A UPC-A is the same item as the EAN-13 with a leading 0; HQ may have either.
            match counted_line(code, code) {
                Err(TillError::Refused(e)) if code.len() == 12 => {
                    counted_line(&format!("0{code}"), code).map_err(|_| TillError::Refused(e))
                }
                other => other,
            }
        }
        Scanned::Other(code) => counted_line(code.trim(), "typed"),
        Scanned::Weighed(item) => {
            if qty.is_some() {
                return Err(TillError::Refused(format!(
                    "{} is a scale label that carries its own weight or price; scan it without a quantity",
                    item.barcode
                )));
            }
            // Label scales print the item code (PLU) with leading zeros; HQ may keep it
            // with or without them.
            let plu = item.item_code.trim_start_matches('0');
            let (product, p, price) = match priced(&item.item_code, catalog) {
                Err(TillError::Refused(e)) if !plu.is_empty() && plu != item.item_code => {
                    priced(plu, catalog).map_err(|_| TillError::Refused(e))?
                }
                other => other?,
            };
            let qty = match item.value {
                WeighedValue::WeightKg(kg) => check_qty(kg)?,
                WeighedValue::Price(label) => weight_for_price(label, price).ok_or_else(|| {
                    TillError::Refused(format!(
                        "label {} says {} but no weight at {}/{} gives that amount: weigh the item at the till",
                        item.barcode,
                        money(label),
                        money(price),
                        if p.unit.is_empty() { "unit" } else { &p.unit }
                    ))
                })?,
            };
            let amount = Line::priced(product, qty, price).amount;
            Ok(CartLine { product, name: p.name.clone(), qty, unit_price: price, amount, source: item.barcode.to_string(), counted: false })
        }
    }
}

/// The receipt of a posted retail document, built from the journal so a reprint is the
/// same paper as the original.
pub fn receipt_for(
    doc: &Document,
    catalog: &BTreeMap<ProductCode, Product>,
    store_name: &str,
    issued_at: String,
    labels: &PaymentLabels,
) -> Receipt {
    let payment = doc.header.payment;
    Receipt {
        store_name: store_name.to_owned(),
        document_number: doc.header.number.to_string(),
        issued_at,
        cashier: doc.header.operator.to_string(),
        lines: doc
            .lines
            .iter()
            .map(|l| ReceiptLine {
                name: catalog.get(&l.product).map_or_else(|| l.product.to_string(), |p| p.name.clone()),
                quantity: l.qty,
                unit_price: l.unit_price,
                amount: l.amount,
            })
            .collect(),
        total: doc.total(),
        payments: payment
            .iter()
            .map(|p| devices::receipt::Payment { method: labels.of(p.method).to_owned(), amount: p.tendered })
            .collect(),
        change: payment.map_or(Decimal::ZERO, |p| p.change),
        points: None,
    }
}

// ---------------------------------------------------------------------------------------
// The till service.

/// A device failure as `/api/pos/status` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceProblem {
    pub device: String,
    pub error: String,
    pub at_unix: u64,
}

/// The last thing the scanner (or a typed code) did, for the till screen.
#[derive(Clone, Debug, Serialize)]
pub struct ScanEvent {
    pub ok: bool,
    pub message: String,
    pub at_unix: u64,
}

#[derive(Default)]
struct View {
    display: DisplayState,
    last_device_error: Option<DeviceProblem>,
    startup_problems: Vec<DeviceProblem>,
    last_scan: Option<ScanEvent>,
}

struct Till {
    cart: Cart,
    shift: Option<ShiftRecord>,
}

pub struct Pos {
    shared: Arc<Shared>,
    config: PosConfig,
    devices_config: DevicesConfig,
    devices: Arc<Mutex<Devices>>,
    till: tokio::sync::Mutex<Till>,
    view: Mutex<View>,
}

fn problem_of(e: &DeviceError) -> DeviceProblem {
    DeviceProblem { device: e.role().to_string(), error: e.to_string(), at_unix: now_unix() }
}

async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R, TillError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| TillError::Internal(format!("worker thread failed: {e}")))
}

impl Pos {
    /// Opens the till's devices (a missing one is noted, not fatal), restores an open shift
    /// and starts the scanner thread when a scanner is configured. Call inside the runtime.
    pub async fn start(shared: Arc<Shared>, config: &AgentConfig) -> anyhow::Result<Arc<Pos>> {
        config.pos.check()?;
        let shift: Option<ShiftRecord> = shared.store.last_shift()?;
        if let Some(s) = &shift {
            anyhow::ensure!(
                s.version == SHIFT_RECORD_VERSION,
                "shift {} is stored in format {}; this agent reads {SHIFT_RECORD_VERSION}: upgrade",
                s.id,
                s.version
            );
        }
        let shift = shift.filter(|s| s.closed.is_none());
        let devices_config = config.devices.clone();
        // The scanner gets its own `Devices` on its own thread (below).
        let main = DevicesConfig { scanner: Default::default(), ..devices_config.clone() };
        let devices = tokio::task::spawn_blocking(move || Devices::open(&main)).await?;
        let startup_problems: Vec<DeviceProblem> = devices.startup_problems().iter().map(problem_of).collect();
        for p in &startup_problems {
            warn!(device = %p.device, error = %p.error, "device not available at start; the till works without it and tries again on use");
        }
        if let Some(s) = &shift {
            info!(shift = s.id, cashier = %s.cashier, "shift still open from before the restart");
        }
        let pos = Arc::new(Pos {
            shared,
            config: config.pos.clone(),
            devices_config: devices_config.clone(),
            devices: Arc::new(Mutex::new(devices)),
            till: tokio::sync::Mutex::new(Till { cart: Cart::default(), shift }),
            view: Mutex::new(View { startup_problems, ..View::default() }),
        });
        if devices_config.scanner.connection != Connection::None {
            spawn_scanner(pos.clone(), devices_config, tokio::runtime::Handle::current());
        }
        Ok(pos)
    }

    fn view(&self) -> std::sync::MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn store(&self) -> &Arc<Store> {
        &self.shared.store
    }

    fn store_name(&self) -> String {
        self.config.store_name.clone().unwrap_or_else(|| self.store().profile().name)
    }

    fn clock(&self, unix: u64) -> Civil {
        civil(unix, self.config.utc_offset_minutes)
    }

    fn warehouse(&self) -> Result<WarehouseCode, TillError> {
        if let Some(w) = &self.config.warehouse {
            return Ok(*w);
        }
        self.store()
            .profile()
            .warehouses
            .first()
            .cloned()
            .ok_or_else(|| TillError::State("this branch has no warehouse in its scope yet: ask HQ, or set [pos] warehouse".into()))
    }

    /// Notes device errors (the last one is shown in status) and returns their texts. A
    /// device that is simply not configured is not a problem.
    fn note(&self, errors: Vec<DeviceError>) -> Vec<String> {
        let mut texts = Vec::new();
        for e in errors {
            if matches!(e, DeviceError::NotConfigured { .. }) {
                continue;
            }
            let p = problem_of(&e);
            warn!(device = %p.device, error = %p.error, "device problem");
            texts.push(p.error.clone());
            self.view().last_device_error = Some(p);
        }
        texts
    }

    /// Runs `f` on the devices on a blocking thread and mirrors the display state.
    async fn with_devices<R: Send + 'static>(&self, f: impl FnOnce(&mut Devices) -> R + Send + 'static) -> Result<R, TillError> {
        let devices = self.devices.clone();
        let (r, display) = blocking(move || {
            let mut d = devices.lock().unwrap_or_else(|p| p.into_inner());
            let r = f(&mut d);
            (r, d.display_state().clone())
        })
        .await?;
        self.view().display = display;
        Ok(r)
    }

    /// Shows `state`; returns warnings.
    async fn show(&self, state: DisplayState) -> Vec<String> {
        match self.with_devices(move |d| d.show(state)).await {
            Ok(Ok(())) => Vec::new(),
            Ok(Err(e)) => self.note(vec![e]),
            Err(e) => vec![e.to_string()],
        }
    }

    fn record_scan(&self, result: Result<String, String>) {
        let (ok, message) = match result {
            Ok(m) => (true, m),
            Err(m) => (false, m),
        };
        self.view().last_scan = Some(ScanEvent { ok, message, at_unix: now_unix() });
    }

    fn cart_json(&self, till: &Till) -> Value {
        let view = self.view();
        let lines: Vec<Value> = till
            .cart
            .lines()
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut v = json!(l);
                v["line"] = json!(i + 1);
                v
            })
            .collect();
        json!({
            "lines": lines,
            "total": money(till.cart.total()),
            "shift": till.shift.as_ref().map(|s| json!({ "id": s.id, "cashier": s.cashier })),
            "display": view.display,
            "last_scan": view.last_scan,
        })
    }

    pub async fn cart(&self) -> Value {
        let till = self.till.lock().await;
        self.cart_json(&till)
    }

    fn no_shift() -> TillError {
        TillError::State("no shift is open: open one (POST /api/pos/shift/open with cashier and float) before selling".into())
    }

    /// A typed or scanned code into the cart.
    pub async fn scan(&self, code: &str, qty: Option<Decimal>) -> Result<Value, TillError> {
        let code = code.trim();
        if code.is_empty() {
            return Err(TillError::BadRequest("\"code\" is empty".into()));
        }
        let scanned = devices::interpret(code, &self.devices_config.weighed_barcodes).map_err(|e| TillError::Refused(misread_message(&e)));
        let result = match scanned {
            Ok(s) => self.add_scanned(&s, qty).await,
            Err(e) => Err(e),
        };
        self.record_scan(result.as_ref().map(|_| format!("{code} added")).map_err(|e| e.to_string()));
        result
    }

    async fn add_scanned(&self, scanned: &Scanned, qty: Option<Decimal>) -> Result<Value, TillError> {
        let mut till = self.till.lock().await;
        if till.shift.is_none() {
            return Err(Self::no_shift());
        }
        let line = resolve(scanned, qty, &self.store().profile().products)?;
        self.add_line(&mut till, line).await
    }

    async fn add_line(&self, till: &mut Till, line: CartLine) -> Result<Value, TillError> {
        let (i, added) = till.cart.add(line)?;
        let shown = &till.cart.lines()[i];
        let labels = &self.devices_config.display.labels;
        let state = DisplayState::new(
            &spread(&shown.name, &money(added), devices::display::DISPLAY_COLUMNS),
            &spread(&labels.total, &money(till.cart.total()), devices::display::DISPLAY_COLUMNS),
        );
        let added_line = json!(shown);
        let warnings = self.show(state).await;
        let mut v = self.cart_json(till);
        v["added"] = added_line;
        v["added"]["line"] = json!(i + 1);
        v["warnings"] = json!(warnings);
        Ok(v)
    }

    /// Weighs `product` on the scale and adds it. A scale that never settles is refused
    /// with the scale's own advice; the cashier weighs again or types the weight
    /// (`POST /api/pos/scan` with `qty`).
    pub async fn weigh(&self, product: &str) -> Result<Value, TillError> {
        let mut till = self.till.lock().await;
        if till.shift.is_none() {
            return Err(Self::no_shift());
        }
        let catalog = self.store().profile().products;
        let (code, p, price) = priced(product.trim(), &catalog)?;
        let timeout = devices::config::timeout(self.devices_config.scale.timeout_ms);
        let reading = match self.with_devices(move |d| d.read_stable_weight(timeout)).await? {
            Ok(r) => r,
            Err(e) => {
                let text = self.note(vec![e]).pop().unwrap_or_else(|| "no scale is configured; type the weight as the quantity".into());
                return Err(TillError::Device(text));
            }
        };
        if reading.kg <= Decimal::ZERO {
            return Err(TillError::Refused(format!("the scale shows {} kg: put the item on the scale and weigh again", reading.kg)));
        }
        let qty = check_qty(reading.kg.normalize())?;
        let amount = Line::priced(code, qty, price).amount;
        let line = CartLine { product: code, name: p.name.clone(), qty, unit_price: price, amount, source: "scale".into(), counted: false };
        self.add_line(&mut till, line).await
    }

    pub async fn void(&self, n: usize) -> Result<Value, TillError> {
        let mut till = self.till.lock().await;
        let removed = till.cart.void(n)?;
        let labels = &self.devices_config.display.labels;
        let state = DisplayState::new(
            &format!("-{}", removed.name),
            &spread(&labels.total, &money(till.cart.total()), devices::display::DISPLAY_COLUMNS),
        );
        let warnings = self.show(state).await;
        let mut v = self.cart_json(&till);
        v["removed"] = json!(removed);
        v["warnings"] = json!(warnings);
        Ok(v)
    }

    pub async fn clear(&self) -> Result<Value, TillError> {
        let mut till = self.till.lock().await;
        till.cart.clear();
        let warnings = self.show(DisplayState::default()).await;
        let mut v = self.cart_json(&till);
        v["warnings"] = json!(warnings);
        Ok(v)
    }

    /// Takes payment, posts the retail document, then shows the change, prints the
    /// receipt and opens the drawer for cash. Device failures after the post are warnings.
    pub async fn pay(&self, method: PaymentMethod, tendered: Option<Decimal>, date: Option<BusinessDate>) -> Result<Value, TillError> {
        let mut till = self.till.lock().await;
        let shift = till.shift.as_ref().ok_or_else(Self::no_shift)?;
        let operator = OperatorId::new(shift.cashier.clone()).map_err(internal)?;
        if till.cart.is_empty() {
            return Err(TillError::State("the cart is empty: scan items before taking payment".into()));
        }
        let total = till.cart.total();
        let payment = take_payment(method, tendered, total)?;
        let now = self.clock(now_unix());
        let date = match date {
            Some(d) => d,
            None => now.date()?,
        };
        let draft = till.cart.draft(date, operator, self.warehouse()?, payment);
        let store = self.store().clone();
        let posted = match blocking(move || store.post(draft)).await? {
            Ok(p) => p,
            Err(PostFailure::Refused(e)) => return Err(TillError::Refused(format!("{e}; nothing was posted, the cart is kept"))),
            Err(e @ PostFailure::Storage(_)) => return Err(TillError::Internal(e.to_string())),
        };
        // The sale stands from here on: nothing below may fail it.
        self.shared.posted.notify_one();
        till.cart.clear();
        info!(number = %posted.number, seq = posted.seq, %total, method = shift::method_name(method), "retail sale posted");

        let mut warnings = Vec::new();
        let issued_at = format!("{date} {:02}:{:02}", now.hour, now.minute);
        let receipt = match self.receipt(posted.seq, |_| issued_at).await {
            Ok(r) => Some(r),
            Err(e) => {
                warnings.push(format!("the receipt could not be built ({e}); the sale is saved — reprint it later"));
                None
            }
        };
        let kick = method == PaymentMethod::Cash;
        let (errors, printed) = self
            .with_devices(move |d| {
                let mut errors = Vec::new();
                if let Err(e) = d.show_change(payment.tendered, payment.change) {
                    errors.push(e);
                }
                let printed = match receipt.as_ref().map(|r| d.print_receipt(r)) {
                    Some(Ok(())) => true,
                    Some(Err(e)) => {
                        errors.push(e);
                        false
                    }
                    None => false,
                };
                // A layout with kick_drawer opens the drawer from the receipt job already.
                if kick && !(printed && d.layout().kick_drawer) {
                    if let Err(e) = d.open_drawer() {
                        errors.push(e);
                    }
                }
                (errors, printed)
            })
            .await?;
        warnings.extend(self.note(errors));
        Ok(json!({
            "number": posted.number,
            "seq": posted.seq,
            "hash": posted.hash,
            "date": date,
            "total": money(total),
            "payment": payment,
            "receipt_printed": printed,
            "reprint": format!("/api/pos/reprint/{}", posted.seq),
            "warnings": warnings,
        }))
    }

    /// The receipt of journal entry `seq`, which must be a retail document; `issued_at`
    /// gives the printed date and time from the document.
    async fn receipt(&self, seq: u64, issued_at: impl FnOnce(&Document) -> String) -> Result<Receipt, TillError> {
        let store = self.store().clone();
        let entry = blocking(move || store.entry(seq)).await?.map_err(|e| TillError::Internal(format!("{e:#}")))?;
        let entry = entry.ok_or_else(|| TillError::NotFound(format!("no document with seq {seq} at this branch")))?;
        if entry.doc.header.doc_type != DocType::Retail {
            return Err(TillError::Refused(format!(
                "{} is a {}, not a retail sale: it has no till receipt",
                entry.doc.header.number,
                entry.doc.header.doc_type.name()
            )));
        }
        let catalog = self.store().profile().products;
        let issued_at = issued_at(&entry.doc);
        Ok(receipt_for(&entry.doc, &catalog, &self.store_name(), issued_at, &self.config.payment_labels))
    }

    /// Prints the receipt of a posted retail document again.
    pub async fn reprint(&self, seq: u64) -> Result<Value, TillError> {
        let receipt = self.receipt(seq, |doc| format!("{} (reprint)", doc.header.date)).await?;
        let number = receipt.document_number.clone();
        match self.with_devices(move |d| d.print_receipt(&receipt)).await? {
            Ok(()) => {
                info!(%number, seq, "receipt reprinted");
                Ok(json!({ "number": number, "seq": seq, "printed": true }))
            }
            Err(e @ DeviceError::NotConfigured { .. }) => Err(TillError::Device(format!("{e}: set [devices.printer] in agent.toml"))),
            Err(e) => Err(TillError::Device(self.note(vec![e]).join("; "))),
        }
    }

    pub async fn open_shift(&self, cashier: OperatorId, float: Decimal) -> Result<Value, TillError> {
        if float < Decimal::ZERO || float.scale() > MONEY_SCALE {
            return Err(TillError::Refused(format!("float {float} must be 0 or more, in cents")));
        }
        let mut till = self.till.lock().await;
        if let Some(s) = &till.shift {
            return Err(TillError::State(format!(
                "shift {} of {} is open since {}: close it first (POST /api/pos/shift/close with counted_cash)",
                s.id,
                s.cashier,
                self.clock(s.opened_at_unix).text()
            )));
        }
        let store = self.store().clone();
        let last: Option<ShiftRecord> = blocking(move || store.last_shift()).await?.map_err(internal)?;
        let mut float = float;
        float.rescale(MONEY_SCALE);
        let record = ShiftRecord {
            version: SHIFT_RECORD_VERSION,
            id: last.map_or(1, |s| s.id + 1),
            cashier: cashier.to_string(),
            float,
            opened_at_unix: now_unix(),
            first_seq: self.store().head().seq + 1,
            closed: None,
        };
        let (store, r) = (self.store().clone(), record.clone());
        blocking(move || store.put_shift(r.id, &r)).await?.map_err(|e| TillError::Internal(format!("saving the shift: {e:#}")))?;
        info!(shift = record.id, cashier = %record.cashier, %float, "shift opened");
        till.shift = Some(record.clone());
        let warnings = self.show(DisplayState::default()).await;
        let mut v = self.report(&record).await?;
        v["warnings"] = json!(warnings);
        Ok(v)
    }

    /// Hand-over: counts the drawer against the shift's cash sales, closes the shift and
    /// prints the report.
    pub async fn close_shift(&self, counted_cash: Decimal) -> Result<Value, TillError> {
        if counted_cash < Decimal::ZERO || counted_cash.scale() > MONEY_SCALE {
            return Err(TillError::Refused(format!("counted cash {counted_cash} must be 0 or more, in cents")));
        }
        let mut till = self.till.lock().await;
        let Some(open) = till.shift.clone() else { return Err(TillError::State("no shift is open".into())) };
        if !till.cart.is_empty() {
            return Err(TillError::State("the cart is not empty: take payment or clear it before handing over".into()));
        }
        let mut counted_cash = counted_cash;
        counted_cash.rescale(MONEY_SCALE);
        let mut record = open;
        record.closed = Some(shift::ShiftClose { closed_at_unix: now_unix(), last_seq: self.store().head().seq, counted_cash });
        let (store, r) = (self.store().clone(), record.clone());
        blocking(move || store.put_shift(r.id, &r)).await?.map_err(|e| TillError::Internal(format!("saving the shift: {e:#}")))?;
        till.shift = None;
        let r = self.report_of(&record).await?;
        info!(shift = record.id, cashier = %record.cashier, expected = %r.expected_cash, counted = %counted_cash, "shift closed");
        let receipt = &self.devices_config.receipt;
        let job = shift::render_report(&r, &self.store_name(), receipt.width_chars.columns(), receipt.cut);
        let mut report = json!(r);
        let (print, show) = self.with_devices(move |d| (d.print_job(&job), d.show(DisplayState::default()))).await?;
        let printed = print.is_ok();
        let warnings = self.note([print.err(), show.err()].into_iter().flatten().collect());
        report["report_printed"] = json!(printed);
        report["warnings"] = json!(warnings);
        Ok(report)
    }

    async fn report_of(&self, record: &ShiftRecord) -> Result<shift::ShiftReport, TillError> {
        let store = self.store().clone();
        let last_seq = record.last_seq(store.head().seq);
        let first_seq = record.first_seq;
        let (docs, truncated) =
            blocking(move || retail_documents(&store, first_seq, last_seq)).await?.map_err(|e| internal(format!("{e:#}")))?;
        let offset = self.config.utc_offset_minutes;
        Ok(record.report(last_seq, &docs, truncated, |t| civil(t, offset).text()))
    }

    async fn report(&self, record: &ShiftRecord) -> Result<Value, TillError> {
        Ok(json!(self.report_of(record).await?))
    }

    /// The open shift's running report.
    pub async fn current_shift(&self) -> Result<Value, TillError> {
        let shift = self.till.lock().await.shift.clone();
        match shift {
            Some(s) => self.report(&s).await,
            None => Err(TillError::NotFound("no shift is open".into())),
        }
    }

    pub async fn shift_report(&self, id: u64) -> Result<Value, TillError> {
        let store = self.store().clone();
        let record: Option<ShiftRecord> = blocking(move || store.shift(id)).await?.map_err(internal)?;
        match record {
            Some(r) => self.report(&r).await,
            None => Err(TillError::NotFound(format!("no shift {id} at this till"))),
        }
    }

    pub async fn status(&self) -> Value {
        let (shift, cart_lines) = {
            let till = self.till.lock().await;
            (till.shift.as_ref().map(|s| json!({ "id": s.id, "cashier": s.cashier, "first_seq": s.first_seq })), till.cart.lines().len())
        };
        let c = &self.devices_config;
        let view = self.view();
        json!({
            "store_name": self.store_name(),
            "warehouse": self.warehouse().ok(),
            "utc_offset_minutes": self.config.utc_offset_minutes,
            "devices": {
                "printer": describe(&c.printer.connection),
                "drawer": describe_drawer(&c.drawer.connection),
                "display": describe(&c.display.connection),
                "scanner": describe(&c.scanner.connection),
                "scale": describe(&c.scale.connection),
            },
            "startup_problems": view.startup_problems,
            "last_device_error": view.last_device_error,
            "last_scan": view.last_scan,
            "shift": shift,
            "cart_lines": cart_lines,
        })
    }

    pub fn display(&self) -> DisplayState {
        self.view().display.clone()
    }
}

/// Retail documents with seq in `first ..= last`, at most [`SHIFT_DOCUMENTS_MAX`] entries
/// looked at; `true` when the range was cut.
fn retail_documents(store: &Store, first: u64, last: u64) -> anyhow::Result<(Vec<(u64, Document)>, bool)> {
    let end = last.min(first.saturating_add(SHIFT_DOCUMENTS_MAX - 1));
    let mut docs = Vec::new();
    for seq in first..=end {
        if let Some(e) = store.entry(seq)? {
            if e.doc.header.doc_type == DocType::Retail {
                docs.push((seq, e.doc));
            }
        }
    }
    Ok((docs, end < last))
}

fn describe(c: &Connection) -> String {
    match c {
        Connection::None => "none".into(),
        Connection::Simulator => "simulator".into(),
        Connection::Serial { path, .. } => format!("serial {}", path.display()),
        Connection::Tcp { addr } => format!("tcp {addr}"),
        Connection::File { path } => format!("file {}", path.display()),
        Connection::DeviceFile { path } => format!("device {}", path.display()),
    }
}

fn describe_drawer(c: &DrawerConnection) -> String {
    match c {
        DrawerConnection::None => "none".into(),
        DrawerConnection::Simulator => "simulator".into(),
        DrawerConnection::Printer => "through the receipt printer".into(),
        DrawerConnection::Serial { path, .. } => format!("serial {}", path.display()),
        DrawerConnection::Tcp { addr } => format!("tcp {addr}"),
        DrawerConnection::DeviceFile { path } => format!("device {}", path.display()),
    }
}

/// Reads the scanner on its own thread with its own `Devices`, so a wait for the next scan
/// never holds the printer, and feeds each good code into the cart like a typed one.
fn spawn_scanner(pos: Arc<Pos>, config: DevicesConfig, rt: tokio::runtime::Handle) {
    let only_scanner = DevicesConfig { scanner: config.scanner, weighed_barcodes: config.weighed_barcodes, ..DevicesConfig::default() };
    let spawned = std::thread::Builder::new().name("pos-scanner".into()).spawn(move || {
        let mut scanner = Devices::open(&only_scanner);
        let problems: Vec<DeviceProblem> = scanner.startup_problems().iter().map(problem_of).collect();
        for p in &problems {
            warn!(device = %p.device, error = %p.error, "scanner not available at start; retrying");
        }
        pos.view().startup_problems.extend(problems);
        loop {
            match scanner.poll_scan() {
                Ok(None) => {}
                Ok(Some(scanned)) => {
                    let code = match &scanned {
                        Scanned::Product(g) => g.to_string(),
                        Scanned::Weighed(w) => w.barcode.to_string(),
                        Scanned::Other(s) => s.clone(),
                    };
                    let result = rt.block_on(pos.add_scanned(&scanned, None));
                    if let Err(e) = &result {
                        info!(%code, error = %e, "scan refused");
                    }
                    pos.record_scan(result.map(|_| format!("{code} added")).map_err(|e| e.to_string()));
                }
                Err(DeviceError::BadInput { reason: InputError::Barcode(b), .. }) => pos.record_scan(Err(misread_message(&b))),
                Err(e @ DeviceError::BadInput { .. }) => pos.record_scan(Err(e.to_string())),
                Err(e) => {
                    pos.note(vec![e]);
                    std::thread::sleep(Duration::from_millis(SCANNER_RETRY_MS));
                }
            }
        }
    });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "cannot start the scanner thread; type codes instead");
    }
}

// ---------------------------------------------------------------------------------------
// HTTP: JSON under /api/pos, pages at /pos and /pos/display.

type PosState = Arc<Pos>;

pub fn router(pos: Arc<Pos>) -> Router {
    Router::new()
        .route("/pos", get(till_page))
        .route("/pos/display", get(display_page))
        .route("/api/pos/display", get(display))
        .route("/api/pos/status", get(status))
        .route("/api/pos/cart", get(cart).delete(clear_cart))
        .route("/api/pos/cart/lines/{n}", delete(void_line))
        .route("/api/pos/scan", post(scan))
        .route("/api/pos/weigh", post(weigh))
        .route("/api/pos/pay", post(pay))
        .route("/api/pos/reprint/{seq}", post(reprint))
        .route("/api/pos/shift", get(current_shift))
        .route("/api/pos/shift/open", post(open_shift))
        .route("/api/pos/shift/close", post(close_shift))
        .route("/api/pos/shifts/{id}", get(shift_by_id))
        .with_state(pos)
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, TillError> {
    serde_json::from_slice(body).map_err(|e| TillError::BadRequest(format!("request JSON is not valid: {e}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanRequest {
    code: String,
    #[serde(default, with = "protocol::decimal_serde::option")]
    qty: Option<Decimal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WeighRequest {
    product: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PayRequest {
    method: String,
    #[serde(default, with = "protocol::decimal_serde::option")]
    tendered: Option<Decimal>,
    #[serde(default)]
    date: Option<BusinessDate>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OpenShiftRequest {
    cashier: OperatorId,
    #[serde(default, with = "protocol::decimal_serde::option")]
    float: Option<Decimal>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CloseShiftRequest {
    #[serde(with = "protocol::decimal_serde")]
    counted_cash: Decimal,
}

async fn display(State(pos): State<PosState>) -> Json<DisplayState> {
    Json(pos.display())
}

async fn status(State(pos): State<PosState>) -> Json<Value> {
    Json(pos.status().await)
}

async fn cart(State(pos): State<PosState>) -> Json<Value> {
    Json(pos.cart().await)
}

async fn clear_cart(State(pos): State<PosState>) -> Result<Json<Value>, TillError> {
    pos.clear().await.map(Json)
}

async fn void_line(State(pos): State<PosState>, Path(n): Path<usize>) -> Result<Json<Value>, TillError> {
    pos.void(n).await.map(Json)
}

async fn scan(State(pos): State<PosState>, body: axum::body::Bytes) -> Result<Json<Value>, TillError> {
    let req: ScanRequest = parse(&body)?;
    pos.scan(&req.code, req.qty).await.map(Json)
}

async fn weigh(State(pos): State<PosState>, body: axum::body::Bytes) -> Result<Json<Value>, TillError> {
    let req: WeighRequest = parse(&body)?;
    pos.weigh(&req.product).await.map(Json)
}

async fn pay(State(pos): State<PosState>, body: axum::body::Bytes) -> Result<(StatusCode, Json<Value>), TillError> {
    let req: PayRequest = parse(&body)?;
    let method = parse_method(&req.method)
        .ok_or_else(|| TillError::BadRequest(format!("payment method {:?} is not one of Cash, Card, Mobile", req.method)))?;
    pos.pay(method, req.tendered, req.date).await.map(|v| (StatusCode::CREATED, Json(v)))
}

async fn reprint(State(pos): State<PosState>, Path(seq): Path<u64>) -> Result<Json<Value>, TillError> {
    pos.reprint(seq).await.map(Json)
}

async fn current_shift(State(pos): State<PosState>) -> Result<Json<Value>, TillError> {
    pos.current_shift().await.map(Json)
}

async fn open_shift(State(pos): State<PosState>, body: axum::body::Bytes) -> Result<(StatusCode, Json<Value>), TillError> {
    let req: OpenShiftRequest = parse(&body)?;
    pos.open_shift(req.cashier, req.float.unwrap_or(Decimal::ZERO)).await.map(|v| (StatusCode::CREATED, Json(v)))
}

async fn close_shift(State(pos): State<PosState>, body: axum::body::Bytes) -> Result<Json<Value>, TillError> {
    let req: CloseShiftRequest = parse(&body)?;
    pos.close_shift(req.counted_cash).await.map(Json)
}

async fn shift_by_id(State(pos): State<PosState>, Path(id): Path<u64>) -> Result<Json<Value>, TillError> {
    pos.shift_report(id).await.map(Json)
}

async fn display_page() -> Html<&'static str> {
    Html(DISPLAY_PAGE)
}

async fn till_page() -> Html<&'static str> {
    Html(TILL_PAGE)
}

/// The second screen facing the customer: the same two lines as the pole display, large.
const DISPLAY_PAGE: &str = r#"<!doctype html><meta charset=utf-8><meta name=viewport content="width=device-width">
<title>Customer display</title>
<style>html,body{margin:0;height:100%;background:#000;color:#9f6;font-family:"Noto Sans Mono CJK SC","WenQuanYi Zen Hei Mono",monospace}
#d{display:flex;flex-direction:column;justify-content:center;height:100%;padding:0 3vw;box-sizing:border-box}
.l{font-size:7.5vw;white-space:pre;line-height:1.4;overflow:hidden}</style>
<div id=d><div class=l id=l1> </div><div class=l id=l2> </div></div>
<script>
async function tick(){try{const r=await fetch('/api/pos/display',{cache:'no-store'});const s=await r.json();
l1.textContent=s.line1||' ';l2.textContent=s.line2||' ';document.body.style.opacity=1}catch(e){document.body.style.opacity=.4}}
setInterval(tick,500);tick();
</script>"#;

/// A minimal till: a keyboard-wedge scanner types into the code box and presses Enter.
const TILL_PAGE: &str = r#"<!doctype html><meta charset=utf-8><title>Till</title>
<style>body{font-family:sans-serif;margin:1.5em;max-width:60em}td,th{border:1px solid #ccc;padding:3px 8px}table{border-collapse:collapse;margin:.5em 0}
input,button{font-size:1.1em;margin:2px}#msg{min-height:1.4em;font-weight:bold}.bad{color:#b00}.ok{color:#070}#total{font-size:2em}</style>
<h1>Till <small id=shift></small></h1>
<p><a href=/pos/display target=_blank>customer display</a> · <a href=/api/pos/status>device status</a></p>
<form id=scanf><input id=code placeholder="scan or type a code" autofocus size=20> <input id=qty placeholder="qty / kg" size=6> <button>Add</button>
<input id=wp placeholder="product to weigh" size=14> <button type=button onclick="weigh()">Weigh</button></form>
<div id=msg></div>
<table id=cart><tr><th>#</th><th>Item</th><th>Qty</th><th>Price</th><th>Amount</th><th></th></tr></table>
<div>Total <span id=total>0.00</span></div>
<p><input id=tendered placeholder="cash tendered" size=10> <button onclick="pay('Cash')">Cash</button> <button onclick="pay('Card')">Card</button>
<button onclick="pay('Mobile')">Mobile</button> <button onclick="call('DELETE','/api/pos/cart')">Clear</button> <button id=rp onclick="reprint()" disabled>Reprint last</button></p>
<h2>Shift (交班)</h2>
<p><input id=cashier placeholder=cashier size=10> <input id=float placeholder=float size=8> <button onclick="openShift()">Open shift</button>
<input id=counted placeholder="counted cash" size=10> <button onclick="closeShift()">Close shift</button></p>
<pre id=report></pre>
<script>
let lastSeq=null;
function say(t,ok){msg.textContent=t;msg.className=ok?'ok':'bad'}
async function call(m,u,b){const r=await fetch(u,{method:m,headers:{'content-type':'application/json'},body:b?JSON.stringify(b):undefined});
const v=await r.json();if(!r.ok){say(v.error,false);return null}if(v.warnings&&v.warnings.length)say(v.warnings.join(' | '),false);else if(m!='GET')say('ok',true);
if(v.lines)draw(v);return v}
function draw(v){while(cart.rows.length>1)cart.deleteRow(1);for(const l of v.lines){const r=cart.insertRow();
for(const t of [l.line,l.name,l.qty,l.unit_price,l.amount])r.insertCell().textContent=t;
const b=document.createElement('button');b.textContent='void';b.onclick=()=>call('DELETE','/api/pos/cart/lines/'+l.line);r.insertCell().appendChild(b)}
total.textContent=v.total;shift.textContent=v.shift?('shift '+v.shift.id+' · '+v.shift.cashier):'(no shift open)'}
scanf.onsubmit=async e=>{e.preventDefault();const b={code:code.value};if(qty.value)b.qty=qty.value;code.value='';qty.value='';await call('POST','/api/pos/scan',b);code.focus()};
async function weigh(){await call('POST','/api/pos/weigh',{product:wp.value})}
async function pay(m){const b={method:m};if(tendered.value)b.tendered=tendered.value;const v=await call('POST','/api/pos/pay',b);
if(v){tendered.value='';lastSeq=v.seq;rp.disabled=false;if(!v.warnings.length)say(v.number+' · change '+v.payment.change,true);call('GET','/api/pos/cart')}}
async function reprint(){if(lastSeq)await call('POST','/api/pos/reprint/'+lastSeq)}
async function openShift(){const b={cashier:cashier.value};if(float.value)b.float=float.value;if(await call('POST','/api/pos/shift/open',b))call('GET','/api/pos/cart')}
async function closeShift(){const v=await call('POST','/api/pos/shift/close',{counted_cash:counted.value});if(v){report.textContent=JSON.stringify(v,null,1);call('GET','/api/pos/cart')}}
call('GET','/api/pos/cart');setInterval(()=>fetch('/api/pos/cart').then(r=>r.json()).then(draw),2000);
</script>"#;

#[cfg(test)]
mod tests {
    use super::*;
    use devices::barcode::{check_digit, WeighedFormat, WeighedFormatSpec};
    use protocol::codes::BranchCode;
    use rust_decimal_macros::dec;

    fn catalog() -> BTreeMap<ProductCode, Product> {
        let p = |name: &str, unit: &str, price: Option<Decimal>| Product {
            name: name.into(),
            unit: unit.into(),
            retail_price: price,
            prices: Vec::new(),
        };
        [
            ("6901234567892", p("矿泉水 550ml", "瓶", Some(dec!(2.00)))),
            ("036000291452", p("Tissues", "box", Some(dec!(5.50)))),
            ("10001", p("香蕉", "kg", Some(dec!(6.80)))),
            ("4006381333931", p("Pen", "pc", None)),
        ]
        .into_iter()
        .map(|(c, p)| (ProductCode::new(c).expect("code"), p))
        .collect()
    }

    fn scan(code: &str, formats: &[WeighedFormat]) -> Result<CartLine, TillError> {
        let s = devices::interpret(code, formats).map_err(|e| TillError::Refused(misread_message(&e)))?;
        resolve(&s, None, &catalog())
    }

    fn ean(body: &str) -> String {
        let digits: Vec<u8> = body.bytes().map(|b| b - b'0').collect();
        format!("{body}{}", check_digit(&digits))
    }

    #[test]
    fn cart_merges_counted_items_and_totals() {
        let mut cart = Cart::default();
        let water = scan("6901234567892", &[]).expect("known");
        assert_eq!(cart.add(water.clone()).expect("adds"), (0, dec!(2.00)));
        assert_eq!(cart.add(water).expect("adds"), (0, dec!(2.00)), "same product, same line");
        let tissues = scan("036000291452", &[]).expect("UPC-A");
        cart.add(tissues).expect("adds");
        let bananas = resolve(&Scanned::Other("10001".into()), Some(dec!(1.235)), &catalog()).expect("typed weight");
        assert_eq!(bananas.amount, dec!(8.40), "1.235 x 6.80 = 8.398 -> 8.40");
        cart.add(bananas).expect("adds");
        assert_eq!(cart.lines().len(), 3);
        assert_eq!(cart.lines()[0].qty, dec!(2));
        assert_eq!(cart.lines()[0].amount, dec!(4.00));
        assert_eq!(cart.total(), dec!(17.90));
        let removed = cart.void(2).expect("line 2 exists");
        assert_eq!(removed.name, "Tissues");
        assert!(matches!(cart.void(9), Err(TillError::NotFound(_))));
        assert_eq!(cart.total(), dec!(12.40));

        // The draft carries the same lines and passes the protocol's own checks.
        let pay = take_payment(PaymentMethod::Cash, Some(dec!(20)), cart.total()).expect("enough");
        assert_eq!((pay.tendered.to_string().as_str(), pay.change), ("20.00", dec!(7.60)));
        let draft = cart.draft(
            BusinessDate::parse("2026-06-09").expect("date"),
            OperatorId::new("sh-li").expect("op"),
            WarehouseCode::new("SH01").expect("wh"),
            pay,
        );
        let doc = draft.number(BranchCode::new("SH").expect("b"), 1).expect("valid retail document");
        assert_eq!(doc.header.number.to_string(), "LS-SH-0609-001");
        assert_eq!(doc.total(), dec!(12.40));

        let r = receipt_for(&doc, &catalog(), "好邻居 SH", "2026-06-09 10:00".into(), &PaymentLabels::default());
        assert_eq!(r.lines[0].name, "矿泉水 550ml");
        assert_eq!((r.total, r.change, r.payments[0].amount), (dec!(12.40), dec!(7.60), dec!(20.00)));
        devices::render(&r, &devices::ReceiptLayout::default()).expect("renders");
    }

    #[test]
    fn payment_rules() {
        let total = dec!(12.40);
        let e = take_payment(PaymentMethod::Cash, Some(dec!(10)), total).expect_err("short");
        assert_eq!(e.to_string(), "tendered 10.00 is less than the total 12.40: take 2.40 more");
        assert!(matches!(take_payment(PaymentMethod::Cash, None, total), Err(TillError::Refused(_))));
        assert!(take_payment(PaymentMethod::Cash, Some(dec!(12.401)), total).is_err());
        let card = take_payment(PaymentMethod::Card, None, total).expect("exact");
        assert_eq!((card.tendered, card.change), (total, Decimal::ZERO));
        let e = take_payment(PaymentMethod::Mobile, Some(dec!(20)), total).expect_err("no change for mobile");
        assert!(e.to_string().contains("change is given only for cash"), "{e}");
        let exact = take_payment(PaymentMethod::Cash, Some(total), total).expect("exact cash");
        assert_eq!(exact.change, Decimal::ZERO);
        assert_eq!(parse_method("cash"), Some(PaymentMethod::Cash));
        assert_eq!(parse_method("Mobile"), Some(PaymentMethod::Mobile));
        assert_eq!(parse_method("cheque"), None);
    }

    #[test]
    fn bad_codes_have_clear_messages() {
        let e = scan("6901234567893", &[]).expect_err("misread");
        assert_eq!(e.to_string(), "barcode 6901234567893 misread (check digit should be 2): scan again or type the code");
        let e = scan("9501101531000", &[]).expect_err("unknown");
        assert!(matches!(&e, TillError::Refused(m) if m.starts_with("product 9501101531000 is not in HQ's catalog")), "{e}");
        let e = scan("4006381333931", &[]).expect_err("no price");
        assert!(e.to_string().contains("has no retail price; ask HQ"), "{e}");
        let e = resolve(&Scanned::Other("6901234567892".into()), Some(dec!(0)), &catalog()).expect_err("zero qty");
        assert!(e.to_string().contains("must be more than 0"), "{e}");
        let e = resolve(&Scanned::Other("no such/code".into()), None, &catalog()).expect_err("not a code");
        assert!(e.to_string().contains("is not in HQ's catalog"), "{e}");
    }

    #[test]
    fn weighed_labels_become_weight_lines() {
        let format = |value: &str| -> WeighedFormat {
            let spec: WeighedFormatSpec =
                serde_json::from_value(json!({"prefix": "2", "item_digits": 6, "value_digits": 5, "value": value})).expect("spec");
            WeighedFormat::try_from(spec).expect("13 digits")
        };
        // Item 010001, 1.235 kg.
        let line = scan(&ean("201000101235"), &[format("weight_grams")]).expect("weight label");
        assert_eq!((line.product.as_str(), line.qty, line.amount, line.counted), ("10001", dec!(1.235), dec!(8.40), false));
        // Item 010001 priced 8.40 at 6.80/kg: a weight whose amount is exactly 8.40.
        let line = scan(&ean("201000100840"), &[format("price_cents")]).expect("price label");
        assert_eq!(line.amount, dec!(8.40));
        assert_eq!(round_money(line.qty * dec!(6.80)), dec!(8.40));
        assert_eq!(weight_for_price(dec!(8.40), Decimal::ZERO), None);
        // Weighed lines never merge.
        let mut cart = Cart::default();
        cart.add(line.clone()).expect("adds");
        cart.add(line).expect("adds");
        assert_eq!(cart.lines().len(), 2);
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil(0, 0), Civil { year: 1970, month: 1, day: 1, hour: 0, minute: 0 });
        // 2026-06-09 23:30 UTC is already 06-10 07:30 in Shanghai.
        let t = 1_781_047_800;
        assert_eq!(civil(t, 0).text(), "2026-06-09 23:30");
        assert_eq!(civil(t, 480).text(), "2026-06-10 07:30");
        assert_eq!(civil(951_782_400, 0).text(), "2000-02-29 00:00");
        assert_eq!(civil(4_107_542_399, 0).text(), "2100-02-28 23:59");
        assert_eq!(civil(t, 480).date().expect("valid").to_string(), "2026-06-10");
        assert!(matches!(civil(0, 0).date(), Err(TillError::State(_))), "1970 is not a business date");
    }
}
