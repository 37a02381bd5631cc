//! What a cross-branch transfer costs the books engine, beside a transfer inside one
//! branch (同价调拨, TJ) of the same lines, timed in the same run.
//!
//! A benchmark, not a test: it prints figures and asserts only that every document posts.
//! Run with `cargo bench -p branchline-protocol --bench transfers`.
//!
//! Each round moves the same lines (1–10 lines over 200 products) from a FIFO shipper to a
//! moving-average receiver: the shipper's `shipment_layers` + post + apply of the
//! shipment (调拨出库), then the receiver's post + apply of the receipt (调拨入库) at the
//! walked layers. The baseline moves the same lines between two warehouses of one branch
//! with a TJ: one post + apply. The ratio says what the two-branch path costs on top
//! (two documents, the layers named and checked, the transit ledger).
//!
//! Knobs (environment): `TRANSFER_BENCH_ROUNDS` (default 20,000).

use std::time::{Duration, Instant};

use protocol::books::{post, shipment_layers, Books, PostContext};
use protocol::codes::{BranchCode, OperatorId, ProductCode, WarehouseCode};
use protocol::date::BusinessDate;
use protocol::document::{CostMethod, DocExt, DocType, Document, Draft, Line};
use protocol::transfer::{receipt_layers, CostLayer, TransferRef};
use protocol::Decimal;

const PRODUCTS: usize = 200;

fn pc(i: usize) -> ProductCode {
    ProductCode::new(format!("P{i:04}")).expect("product code")
}

struct Branch {
    code: BranchCode,
    books: Books,
    serial: u32,
}

impl Branch {
    fn open(code: &str, warehouses: &[&str], method: CostMethod) -> Branch {
        let mut b = Branch { code: BranchCode::new(code).expect("branch"), books: Books::default(), serial: 0 };
        for (i, w) in warehouses.iter().enumerate() {
            let lines = (0..PRODUCTS).map(|p| Line::priced(pc(p), Decimal::from(1_000_000), Decimal::new(200 + p as i64, 2))).collect();
            let mut d = draft(DocType::Opening, w, lines);
            if i == 0 {
                d.ext.cost_method = Some(method);
            }
            b.post(d);
        }
        b
    }

    fn post(&mut self, d: Draft) -> Document {
        self.serial = self.serial % 999 + 1;
        let doc = d.number(self.code, self.serial).expect("valid");
        let p = post(&self.books, &doc, PostContext::default()).expect("posts");
        self.books.apply_owned(doc.clone(), p);
        doc
    }
}

fn draft(t: DocType, w: &str, lines: Vec<Line>) -> Draft {
    Draft {
        doc_type: t,
        date: BusinessDate::new(2026, 7, 1).expect("date"),
        operator: OperatorId::new("bench").expect("operator"),
        warehouse: WarehouseCode::new(w).expect("warehouse"),
        counterparty: None,
        memo: String::new(),
        payment: None,
        lines,
        ext: DocExt::default(),
    }
}

fn lines(round: usize) -> Vec<Line> {
    let n = round % 10 + 1;
    (0..n).map(|k| Line::priced(pc((round * 7 + k * 13) % PRODUCTS), Decimal::from(k as i64 + 1), Decimal::ZERO)).collect()
}

fn main() {
    let rounds: usize = std::env::var("TRANSFER_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000);
    println!("machine: {}", edge::machine::describe());
    println!("rounds: {rounds} (1-10 lines each over {PRODUCTS} products)");

    // Baseline: TJ inside one branch (FIFO), SH01 → SH02.
    let mut one = Branch::open("SH", &["SH01", "SH02"], CostMethod::Fifo);
    let t0 = Instant::now();
    for r in 0..rounds {
        let mut d = draft(DocType::TransferSamePrice, "SH01", lines(r));
        d.ext.to_warehouse = Some(WarehouseCode::new("SH02").expect("warehouse"));
        one.post(d);
    }
    let base = t0.elapsed();

    // Cross-branch: SH (FIFO) ships, HB (moving average) receives at the walked layers.
    let mut sh = Branch::open("SH", &["SH01"], CostMethod::Fifo);
    let mut hb = Branch::open("HB", &["HB01"], CostMethod::MovingAverage);
    let sh01 = WarehouseCode::new("SH01").expect("warehouse");
    let t0 = Instant::now();
    for r in 0..rounds {
        let order = r as u64 + 1;
        let mut d = draft(DocType::TransferShip, "SH01", lines(r));
        d.ext.layers = shipment_layers(&sh.books, &sh01, &d.lines).expect("layers");
        d.ext.transfer = Some(TransferRef { order, priced: false, shipment: None, last: false, settle: None });
        let ship = sh.post(d);
        let mut rec = draft(DocType::TransferReceive, "HB01", ship.lines.clone());
        for l in &ship.lines {
            let shipped: Vec<_> = ship
                .header
                .ext
                .layers
                .iter()
                .filter(|c| c.product == l.product)
                .map(|c| protocol::books::Position { qty: c.qty, value: c.value })
                .collect();
            let taken: Decimal = rec.ext.layers.iter().filter(|c| c.product == l.product).map(|c| c.qty).sum();
            rec.ext.layers.extend(receipt_layers(&shipped, taken, l.qty).into_iter().map(|p| CostLayer {
                product: l.product,
                qty: p.qty,
                value: p.value,
                at_price: Decimal::ZERO,
            }));
        }
        rec.ext.transfer = Some(TransferRef { order, priced: false, shipment: Some(ship.header.number.clone()), last: true, settle: None });
        hb.post(rec);
    }
    let cross = t0.elapsed();

    let per = |d: Duration| d.as_secs_f64() * 1e6 / rounds as f64;
    println!("baseline  TJ inside one branch:        {:>8.2} µs per transfer", per(base));
    println!("cross-branch shipment + receipt:       {:>8.2} µs per transfer", per(cross));
    println!("ratio cross-branch / baseline:         {:>8.2}", cross.as_secs_f64() / base.as_secs_f64());
    println!("load average after: {}", edge::machine::load_average());
}
