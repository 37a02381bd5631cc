//! Posting rules for stock under moving weighted average cost.
//!
//! Posting is a pure function: (current positions, document) → [`Posting`], a list of
//! per-line stock moves with their cost. It is run by the branch when a document is
//! posted and by HQ when it merges the branch's journal, over the same positions, so both
//! sides compute the same books. Applying a posting is separate and infallible.
//!
//! Rounding rule (written once, used everywhere): goods in are valued at the line amount
//! (already rounded to the cent); goods out cost `value × qty_out / qty_on_hand`, rounded
//! half away from zero to the cent, except that taking the whole quantity takes the whole
//! value, so no residue of a cent is ever left on zero stock.

use std::collections::{BTreeMap, HashMap};

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::codes::{ProductCode, WarehouseCode};
use crate::document::{round_money, DocType, Document};

/// Which way a document moves stock (legacy engine; `books` replaces this module).
enum StockEffect {
    In,
    Out,
}

fn effect(t: DocType) -> StockEffect {
    match t {
        DocType::PurchaseReceipt | DocType::StockGain => StockEffect::In,
        _ => StockEffect::Out,
    }
}
use crate::error::PostError;
use crate::profile::BranchProfile;

/// Quantity and book value of one product in one warehouse.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Position {
    #[serde(with = "crate::decimal_serde")]
    pub qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub value: Decimal,
}

impl Position {
    /// Average unit cost, or zero when empty. For display; posting never uses a rounded
    /// average (see the module's rounding rule).
    pub fn average_cost(&self) -> Decimal {
        if self.qty.is_zero() {
            Decimal::ZERO
        } else {
            (self.value / self.qty).round_dp(4)
        }
    }
}

/// Key of a position.
pub type StockKey = (WarehouseCode, ProductCode);

/// One line's effect on stock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StockMove {
    pub warehouse: WarehouseCode,
    pub product: ProductCode,
    /// Signed: positive in, negative out.
    pub qty: Decimal,
    /// Signed book value moved: line amount in, cost out.
    pub value: Decimal,
}

/// The books effect of one document.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Posting {
    pub moves: Vec<StockMove>,
}

impl Posting {
    /// Cost of goods that went out (positive).
    pub fn cost_out(&self) -> Decimal {
        -self.moves.iter().filter(|m| m.qty < Decimal::ZERO).map(|m| m.value).sum::<Decimal>()
    }
}

/// Read access to current positions.
pub trait StockView {
    fn position(&self, key: &StockKey) -> Position;
}

/// What posting checks the document against besides stock: the branch's scope and the
/// product catalog. `None` skips the check (HQ's own opening data, tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct PostContext<'a> {
    pub profile: Option<&'a BranchProfile>,
}

/// Computes the posting of `doc` against `view`. Pure: nothing is changed.
pub fn post(view: &dyn StockView, doc: &Document, ctx: PostContext<'_>) -> Result<Posting, PostError> {
    doc.validate()?;
    let h = &doc.header;
    if let Some(profile) = ctx.profile {
        if !profile.allows_warehouse(&h.warehouse) {
            return Err(PostError::WarehouseOutOfScope { warehouse: h.warehouse.clone(), allowed: profile.warehouses_text() });
        }
        if let Some(line) = doc.lines.iter().find(|l| !profile.knows_product(&l.product)) {
            return Err(PostError::UnknownProduct { product: line.product.clone() });
        }
    }
    // Lines of one document may repeat a product; each sees the effect of the ones before.
    // A BTreeMap because documents have few distinct products: a handful of comparisons
    // beat hashing every code.
    let mut scratch: BTreeMap<&ProductCode, Position> = BTreeMap::new();
    let mut moves = Vec::with_capacity(doc.lines.len());
    for line in &doc.lines {
        // The key built to read a position goes on to name the move: one pair of code
        // clones per line, not two.
        let mut key: Option<StockKey> = None;
        let pos = scratch.entry(&line.product).or_insert_with(|| {
            let k = (h.warehouse.clone(), line.product.clone());
            let pos = view.position(&k);
            key = Some(k);
            pos
        });
        let overflow = || PostError::Overflow { warehouse: h.warehouse.clone(), product: line.product.clone() };
        let (dq, dv) = match effect(h.doc_type) {
            StockEffect::In => (line.qty, line.amount),
            StockEffect::Out => {
                if line.qty > pos.qty {
                    return Err(PostError::NegativeStock {
                        warehouse: h.warehouse.clone(),
                        product: line.product.clone(),
                        on_hand: pos.qty,
                        needed: line.qty,
                    });
                }
                let cost = if line.qty == pos.qty {
                    pos.value
                } else {
                    round_money(pos.value.checked_mul(line.qty).ok_or_else(overflow)? / pos.qty)
                };
                (-line.qty, -cost)
            }
        };
        pos.qty = pos.qty.checked_add(dq).ok_or_else(overflow)?;
        pos.value = pos.value.checked_add(dv).ok_or_else(overflow)?;
        let (warehouse, product) = key.unwrap_or_else(|| (h.warehouse.clone(), line.product.clone()));
        moves.push(StockMove { warehouse, product, qty: dq, value: dv });
    }
    Ok(Posting { moves })
}

/// Stock books held in memory: the branch's own, or HQ's consolidated ones.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Books {
    stock: BTreeMap<StockKey, Position>,
}

impl StockView for Books {
    fn position(&self, key: &StockKey) -> Position {
        self.stock.get(key).copied().unwrap_or_default()
    }
}

impl Books {
    pub fn from_positions(positions: impl IntoIterator<Item = (StockKey, Position)>) -> Books {
        Books { stock: positions.into_iter().collect() }
    }

    /// Applies a posting computed against these books (or an overlay of them).
    pub fn apply(&mut self, posting: &Posting) {
        for m in &posting.moves {
            let pos = self.stock.entry((m.warehouse.clone(), m.product.clone())).or_default();
            pos.qty += m.qty;
            pos.value += m.value;
            debug_assert!(pos.qty >= Decimal::ZERO, "posting rules allow no negative stock");
        }
    }

    pub fn set(&mut self, key: StockKey, pos: Position) {
        self.stock.insert(key, pos);
    }

    pub fn positions(&self) -> impl Iterator<Item = (&StockKey, &Position)> {
        self.stock.iter()
    }

    /// A digest of the positions of the warehouses `filter` accepts: equal books give
    /// equal digests on both sides. Positions that were never touched and zero ones are
    /// the same thing, so zeroes are skipped.
    pub fn digest(&self, filter: impl Fn(&WarehouseCode) -> bool) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        for ((w, p), pos) in &self.stock {
            if !filter(w) || (pos.qty.is_zero() && pos.value.is_zero()) {
                continue;
            }
            h.update(w.as_str().as_bytes());
            h.update(&[0]);
            h.update(p.as_str().as_bytes());
            h.update(&[0]);
            h.update(pos.qty.normalize().to_string().as_bytes());
            h.update(&[0]);
            h.update(pos.value.normalize().to_string().as_bytes());
            h.update(&[0]);
        }
        *h.finalize().as_bytes()
    }
}

/// Changes on top of a base view, for posting a run of documents before any is durable:
/// HQ posts a whole batch into an overlay, writes it, and only then folds it into memory.
#[derive(Debug)]
pub struct Overlay<'a, V: StockView + ?Sized> {
    base: &'a V,
    // By warehouse, then product, so a move finds its position through borrowed codes:
    // applying a posting clones codes only for positions it touches first.
    changed: HashMap<WarehouseCode, HashMap<ProductCode, Position>>,
}

impl<'a, V: StockView + ?Sized> Overlay<'a, V> {
    pub fn new(base: &'a V) -> Self {
        Overlay { base, changed: HashMap::new() }
    }

    pub fn apply(&mut self, posting: &Posting) {
        for m in &posting.moves {
            if !self.changed.contains_key(&m.warehouse) {
                self.changed.insert(m.warehouse.clone(), HashMap::new());
            }
            let by_product = self.changed.get_mut(&m.warehouse).expect("inserted above");
            let pos = match by_product.get_mut(&m.product) {
                Some(pos) => pos,
                None => {
                    let key = (m.warehouse.clone(), m.product.clone());
                    let base = self.base.position(&key);
                    by_product.entry(key.1).or_insert(base)
                }
            };
            pos.qty += m.qty;
            pos.value += m.value;
        }
    }

    /// The positions that changed, with their new values.
    pub fn into_changes(self) -> HashMap<StockKey, Position> {
        self.changed.into_iter().flat_map(|(w, by_product)| by_product.into_iter().map(move |(p, pos)| ((w.clone(), p), pos))).collect()
    }
}

impl<V: StockView + ?Sized> StockView for Overlay<'_, V> {
    fn position(&self, key: &StockKey) -> Position {
        match self.changed.get(&key.0).and_then(|by_product| by_product.get(&key.1)) {
            Some(pos) => *pos,
            None => self.base.position(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::{BranchCode, OperatorId, PartyCode};
    use crate::date::BusinessDate;
    use crate::document::{DocType, Draft, Line};
    use rust_decimal_macros::dec;

    fn doc(t: DocType, lines: &[(&str, Decimal, Decimal)]) -> Document {
        Draft {
            doc_type: t,
            date: BusinessDate::parse("2026-06-09").expect("date"),
            operator: OperatorId::new("op").expect("op"),
            warehouse: WarehouseCode::new("SH01").expect("wh"),
            counterparty: Some(PartyCode::new("C1").expect("party")),
            memo: String::new(),
            payment: None,
            ext: Default::default(),
            lines: lines.iter().map(|(p, q, pr)| Line::priced(ProductCode::new(*p).expect("p"), *q, *pr)).collect(),
        }
        .number(BranchCode::new("SH").expect("b"), 1)
        .expect("valid")
    }

    fn key(p: &str) -> StockKey {
        (WarehouseCode::new("SH01").expect("wh"), ProductCode::new(p).expect("p"))
    }

    #[test]
    fn moving_average_worked_example() {
        let mut books = Books::default();
        // Receive 10 @ 3.00 = 30.00, then 20 @ 3.30 = 66.00: 30 units worth 96.00, average 3.20.
        for d in
            [doc(DocType::PurchaseReceipt, &[("A", dec!(10), dec!(3.00))]), doc(DocType::PurchaseReceipt, &[("A", dec!(20), dec!(3.30))])]
        {
            let p = post(&books, &d, PostContext::default()).expect("posts");
            books.apply(&p);
        }
        assert_eq!(books.position(&key("A")), Position { qty: dec!(30), value: dec!(96.00) });
        assert_eq!(books.position(&key("A")).average_cost(), dec!(3.2));
        // Sell 7 at any price: cost = 96.00 x 7 / 30 = 22.40; 23 left worth 73.60.
        let sale = post(&books, &doc(DocType::Sale, &[("A", dec!(7), dec!(5))]), PostContext::default()).expect("posts");
        assert_eq!(sale.cost_out(), dec!(22.40));
        books.apply(&sale);
        assert_eq!(books.position(&key("A")), Position { qty: dec!(23), value: dec!(73.60) });
        // Lose 1 of 3 thirds: 73.60 x 1 / 23 = 3.2 exactly; then sell the remaining 22 = all 70.40.
        books.apply(&post(&books, &doc(DocType::StockLoss, &[("A", dec!(1), dec!(0))]), PostContext::default()).expect("posts"));
        let all = post(&books, &doc(DocType::Sale, &[("A", dec!(22), dec!(5))]), PostContext::default()).expect("posts");
        assert_eq!(all.cost_out(), dec!(70.40));
        books.apply(&all);
        assert_eq!(books.position(&key("A")), Position::default());
    }

    #[test]
    fn negative_stock_is_refused_and_changes_nothing() {
        let mut books = Books::default();
        books.apply(&post(&books, &doc(DocType::PurchaseReceipt, &[("A", dec!(2), dec!(1))]), PostContext::default()).expect("posts"));
        let before = books.clone();
        // Two lines of the same product: 2 then 1 more than on hand.
        let err = post(&books, &doc(DocType::Sale, &[("A", dec!(2), dec!(1)), ("A", dec!(1), dec!(1))]), PostContext::default());
        assert!(matches!(err, Err(PostError::NegativeStock { .. })), "{err:?}");
        assert_eq!(books, before);
    }

    #[test]
    fn overlay_reads_through_and_keeps_only_what_changed() {
        let mut books = Books::default();
        let receipt = doc(DocType::PurchaseReceipt, &[("A", dec!(10), dec!(3)), ("B", dec!(5), dec!(2))]);
        books.apply(&post(&books, &receipt, PostContext::default()).expect("posts"));
        let before = books.clone();
        let mut overlay = Overlay::new(&books);
        // Sell 4 of 10 worth 30.00: cost 12.00. The next sale sees what is left.
        overlay.apply(&post(&overlay, &doc(DocType::Sale, &[("A", dec!(4), dec!(5))]), PostContext::default()).expect("posts"));
        assert_eq!(overlay.position(&key("A")), Position { qty: dec!(6), value: dec!(18.00) });
        assert_eq!(overlay.position(&key("B")), Position { qty: dec!(5), value: dec!(10.00) }, "untouched reads through");
        let rest = post(&overlay, &doc(DocType::Sale, &[("A", dec!(6), dec!(5))]), PostContext::default()).expect("posts");
        assert_eq!(rest.cost_out(), dec!(18.00));
        overlay.apply(&rest);
        let changes = overlay.into_changes();
        assert_eq!(changes, HashMap::from([(key("A"), Position::default())]));
        assert_eq!(books, before, "the base is not touched");
    }

    #[test]
    fn thirds_leave_no_cent_behind() {
        let mut books = Books::default();
        books.apply(&post(&books, &doc(DocType::PurchaseReceipt, &[("A", dec!(3), dec!(3.3333))]), PostContext::default()).expect("posts"));
        // 3 x 3.3333 = 9.9999 -> 10.00.
        assert_eq!(books.position(&key("A")).value, dec!(10.00));
        let mut total = Decimal::ZERO;
        for _ in 0..3 {
            let p = post(&books, &doc(DocType::Sale, &[("A", dec!(1), dec!(4))]), PostContext::default()).expect("posts");
            total += p.cost_out();
            books.apply(&p);
        }
        // 3.33, 3.34 (6.67 x 1/2 = 3.335 -> 3.34), 3.33: sums to exactly 10.00.
        assert_eq!(total, dec!(10.00));
        assert_eq!(books.position(&key("A")), Position::default());
    }
}
