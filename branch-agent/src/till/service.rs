//! The till service: `Pos` holds the cart, the open shift and the devices, and runs each
//! till step — scan, weigh, void, pay (post, then display, receipt, drawer), reprint, shift
//! open and hand-over — against the branch store. This is the I/O side of the till: it
//! reads the clock, posts through `Store::post`, and drives devices on blocking threads.
//! The rules it applies live in the pure modules (`cart`, `payment`, `resolve`,
//! `receipt`, `config`); HTTP is `routes`' business and the scanner thread `scanner`'s.
//!
//! One till per agent. The cart and the open shift sit behind one async mutex held for a
//! whole till operation (including its device I/O), so two requests can never pay the same
//! cart and the display shows steps in order. Device calls block up to their configured
//! deadline, so they run on blocking threads; the scanner has its own `Devices` and thread
//! so waiting for a scan never holds up the printer. The cart is memory only: an agent
//! restart empties it, and nothing of it was posted.

use std::sync::{Arc, Mutex};

use devices::config::{Connection, DrawerConnection};
use devices::receipt::money;
use devices::text::spread;
use devices::{DeviceError, Devices, DevicesConfig, DisplayState, Receipt, Scanned};
use protocol::codes::{OperatorId, WarehouseCode};
use protocol::date::BusinessDate;
use protocol::document::{DocType, Document, Line, PaymentMethod};
use protocol::Decimal;
use serde::Serialize;
use serde_json::{json, Value};
use tracing::{info, warn};

use super::cart::{check_qty, Cart, CartLine};
use super::config::{business_date, PosConfig};
use super::error::{internal, TillError};
use super::payment::take_payment;
use super::receipt::receipt_for;
use super::resolve::{misread_message, priced, resolve};
use super::scanner::spawn_scanner;
use crate::config::AgentConfig;
use crate::forwarder::Shared;
use crate::shift::{self, ShiftRecord, SHIFT_RECORD_VERSION};
use crate::store::{PostFailure, Store};

use edge::now_unix;

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

pub(super) struct Till {
    pub(super) cart: Cart,
    pub(super) shift: Option<ShiftRecord>,
}

/// The till: one per agent (see the module header for its locking).
pub struct Pos {
    shared: Arc<Shared>,
    pub(super) config: PosConfig,
    pub(super) devices_config: DevicesConfig,
    devices: Arc<Mutex<Devices>>,
    pub(super) till: tokio::sync::Mutex<Till>,
    view: Mutex<View>,
}

pub(super) fn problem_of(e: &DeviceError) -> DeviceProblem {
    DeviceProblem { device: e.role().to_string(), error: e.to_string(), at_unix: now_unix() }
}

pub(super) async fn blocking<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> Result<R, TillError> {
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
        edge::lock(&self.view)
    }

    /// Device problems found after start (the scanner opens on its own thread).
    pub(super) fn add_startup_problems(&self, problems: Vec<DeviceProblem>) {
        self.view().startup_problems.extend(problems);
    }

    pub(super) fn store(&self) -> &Arc<Store> {
        &self.shared.store
    }

    pub(super) fn store_name(&self) -> String {
        self.config.store_name.clone().unwrap_or_else(|| self.store().profile().name.clone())
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
    pub(super) fn note(&self, errors: Vec<DeviceError>) -> Vec<String> {
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
    pub(super) async fn with_devices<R: Send + 'static>(&self, f: impl FnOnce(&mut Devices) -> R + Send + 'static) -> Result<R, TillError> {
        let devices = self.devices.clone();
        let (r, display) = blocking(move || {
            let mut d = edge::lock(&devices);
            let r = f(&mut d);
            (r, d.display_state().clone())
        })
        .await?;
        self.view().display = display;
        Ok(r)
    }

    /// Shows `state`; returns warnings.
    pub(super) async fn show(&self, state: DisplayState) -> Vec<String> {
        match self.with_devices(move |d| d.show(state)).await {
            Ok(Ok(())) => Vec::new(),
            Ok(Err(e)) => self.note(vec![e]),
            Err(e) => vec![e.to_string()],
        }
    }

    pub(super) fn record_scan(&self, result: Result<String, String>) {
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

    pub(super) async fn add_scanned(&self, scanned: &Scanned, qty: Option<Decimal>) -> Result<Value, TillError> {
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
        let profile = self.store().profile();
        let catalog = &profile.products;
        let (code, p, price) = priced(product.trim(), catalog)?;
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
        let now = self.config.local(now_unix());
        let date = match date {
            Some(d) => d,
            None => business_date(now)?,
        };
        let draft = till.cart.draft(date, operator, self.warehouse()?, payment);
        let store = self.store().clone();
        let posted = match blocking(move || store.post(draft)).await? {
            Ok(p) => p,
            Err(PostFailure::Refused(e)) => return Err(TillError::Refused(format!("{e}; nothing was posted, the cart is kept"))),
            Err(PostFailure::NeedsApproval(why)) => return Err(TillError::Refused(format!("{why}; nothing was posted, the cart is kept"))),
            Err(e @ PostFailure::Storage(_)) => return Err(TillError::Internal(e.to_string())),
            Err(e @ PostFailure::Halted(_)) => return Err(TillError::State(format!("{e}; the cart is kept"))),
            Err(e @ PostFailure::Stopped(_)) => return Err(TillError::Internal(e.to_string())),
        };
        // The sale stands from here on: nothing below may fail it.
        self.shared.posted.notify_one();
        till.cart.clear();
        info!(number = %posted.number, seq = posted.seq, %total, method = shift::method_name(method), "retail sale posted");

        let mut warnings = Vec::new();
        let issued_at = format!("{date} {:02}:{:02}", now.hour(), now.minute());
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
        let profile = self.store().profile();
        let issued_at = issued_at(&entry.doc);
        Ok(receipt_for(&entry.doc, &profile.products, &self.store_name(), issued_at, &self.config.payment_labels))
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
            "utc_offset_minutes": self.config.offset_minutes_at(now_unix()),
            "business_zone": self.config.zone.name(),
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
