//! Stock positions and cost layers, the one place costing arithmetic lives.
//!
//! Every position keeps quantity and book value. Under FIFO and LIFO it also keeps
//! layers (each a quantity and its value); under moving average it keeps none.
//!
//! Rounding rule: taking `q` out of a (quantity `Q`, value `V`) takes
//! `round_money(V × q / Q)`, half away from zero, except that taking all of `Q` takes all
//! of `V`. So no cent is ever left on zero stock and no unit cost is ever rounded first.
//!
//! Arithmetic is checked: figures come from documents (each within the limits validation
//! sets), but products of two of them (value × quantity) and sums over many documents can
//! exceed `Decimal`; those give [`Overflow`] (a `PostError`), never a panic.

use std::collections::VecDeque;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::document::{round_half_away, round_money, CostMethod};

/// A figure posting would compute does not fit a `Decimal` (about 7.9 × 10^28): the
/// document is refused with `what` named, and nothing changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Overflow {
    pub what: &'static str,
}

/// `a × b / c` rounded to money, checked: the rounding rule's share of a value.
pub fn prorate(a: Decimal, b: Decimal, c: Decimal, what: &'static str) -> Result<Decimal, Overflow> {
    let over = Overflow { what };
    Ok(round_money(a.checked_mul(b).ok_or(over)?.checked_div(c).ok_or(over)?))
}

/// `a + b`, checked.
pub fn add(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, Overflow> {
    a.checked_add(b).ok_or(Overflow { what })
}

/// `a - b`, checked.
pub fn sub(a: Decimal, b: Decimal, what: &'static str) -> Result<Decimal, Overflow> {
    a.checked_sub(b).ok_or(Overflow { what })
}

/// The sum of `xs`, checked.
pub fn sum(xs: impl IntoIterator<Item = Decimal>, what: &'static str) -> Result<Decimal, Overflow> {
    xs.into_iter().try_fold(Decimal::ZERO, |acc, x| add(acc, x, what))
}

/// Quantity and book value of one product in one place.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Position {
    #[serde(with = "crate::decimal_serde")]
    pub qty: Decimal,
    #[serde(with = "crate::decimal_serde")]
    pub value: Decimal,
}

impl Position {
    /// Average unit cost for display (4 places); posting never uses a rounded average.
    pub fn average_cost(&self) -> Decimal {
        if self.qty.is_zero() {
            Decimal::ZERO
        } else {
            round_half_away(self.value / self.qty, 4)
        }
    }

    pub fn is_zero(&self) -> bool {
        self.qty.is_zero() && self.value.is_zero()
    }

    /// The value of `q` out of this position by the rounding rule. `Ok(None)` if `q`
    /// exceeds it.
    pub fn share(&self, q: Decimal) -> Result<Option<Decimal>, Overflow> {
        if q > self.qty {
            Ok(None)
        } else if q == self.qty {
            Ok(Some(self.value))
        } else {
            prorate(self.value, q, self.qty, "the cost of the goods taken (value × quantity)").map(Some)
        }
    }
}

/// One position's state: totals plus layers (FIFO/LIFO only).
#[derive(Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stock {
    pub pos: Position,
    pub layers: VecDeque<Position>,
}

/// A change to a position, recorded by posting and replayed by apply.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LayerOp {
    /// Moving average: add (or, negative, remove) quantity and value.
    Average {
        #[serde(with = "crate::decimal_serde")]
        qty: Decimal,
        #[serde(with = "crate::decimal_serde")]
        value: Decimal,
    },
    /// New layer at the back (receipts).
    PushBack(Position),
    /// Reversal of a `Take`: the taken layers go back where they came from, in their old
    /// order; with `rejoin`, the last one is merged into the end layer it was split from.
    Untake { at_front: bool, taken: Vec<Position>, rejoin: bool },
    /// Issue from the front (FIFO) or back (LIFO); `taken` is what it took, nearest the
    /// end first. `rest` is what the last layer kept when the issue split it.
    Take { from_front: bool, taken: Vec<Position>, rest: Option<Position> },
    /// Remove one whole layer (reversal of a receipt whose layer is intact).
    Remove { index: usize, layer: Position },
    /// Cost adjustment under FIFO/LIFO: the layers, same quantities, new values.
    Replace { old: Vec<Position>, new: Vec<Position> },
}

impl LayerOp {
    /// The quantity and value an issue took out (positive), or a receipt brought in.
    pub fn moved(&self) -> (Decimal, Decimal) {
        let sum = |ls: &[Position]| ls.iter().fold((Decimal::ZERO, Decimal::ZERO), |(q, v), l| (q + l.qty, v + l.value));
        match self {
            LayerOp::Average { qty, value } => (qty.abs(), value.abs()),
            LayerOp::PushBack(l) | LayerOp::Remove { layer: l, .. } => (l.qty, l.value),
            LayerOp::Take { taken, .. } | LayerOp::Untake { taken, .. } => sum(taken),
            LayerOp::Replace { new, .. } => sum(new),
        }
    }
}

impl Stock {
    /// Takes `q` out by the cost method; returns the op and its value, or `Ok(None)` when
    /// there is not enough stock (no method allows negative stock).
    pub fn take(&self, method: CostMethod, q: Decimal) -> Result<Option<(LayerOp, Decimal)>, Overflow> {
        match method {
            CostMethod::MovingAverage => {
                let Some(v) = self.pos.share(q)? else { return Ok(None) };
                Ok(Some((LayerOp::Average { qty: -q, value: -v }, v)))
            }
            CostMethod::Fifo | CostMethod::Lifo => {
                if q > self.pos.qty {
                    return Ok(None);
                }
                let from_front = method == CostMethod::Fifo;
                let mut left = q;
                let mut taken = Vec::new();
                let mut rest = None;
                let n = self.layers.len();
                let mut i = 0;
                while left > Decimal::ZERO {
                    // Nearest the end first; no boxed iterator (an allocation per issue).
                    // Layers that sum to less than the total are books that do not tie:
                    // refused as not enough stock rather than asserted on data.
                    let Some(index) = (if from_front { Some(i) } else { n.checked_sub(i + 1) }) else { return Ok(None) };
                    let Some(layer) = self.layers.get(index) else { return Ok(None) };
                    i += 1;
                    let q_take = left.min(layer.qty);
                    let Some(value) = layer.share(q_take)? else { return Ok(None) };
                    let t = Position { qty: q_take, value };
                    if q_take < layer.qty {
                        rest = Some(Position { qty: layer.qty - t.qty, value: layer.value - t.value });
                    }
                    taken.push(t);
                    left -= q_take;
                }
                let v = sum(taken.iter().map(|l| l.value), "the cost of the goods taken")?;
                Ok(Some((LayerOp::Take { from_front, taken, rest }, v)))
            }
        }
    }

    /// The cost adjustment of FIFO/LIFO layers to a total of `value`: each layer keeps its
    /// quantity and takes a share of `value` in proportion to its current value (by
    /// quantity if all are valued zero), rounded to the cent; the last layer takes the
    /// remainder, and no share exceeds what is left, so none goes negative. Issue order
    /// and quantities stay as they were.
    pub fn revalue_layers(&self, value: Decimal) -> Result<LayerOp, Overflow> {
        const WHAT: &str = "the layers' share of the new value";
        let old: Vec<Position> = self.layers.iter().copied().collect();
        let by_value = old.iter().any(|l| !l.value.is_zero());
        let weight = |l: &Position| if by_value { l.value } else { l.qty };
        let total = sum(old.iter().map(weight), WHAT)?;
        let mut left = value;
        let mut new = Vec::with_capacity(old.len());
        for (i, l) in old.iter().enumerate() {
            let share = if i + 1 == old.len() { left } else { prorate(value, weight(l), total, WHAT)?.min(left) };
            left = sub(left, share, WHAT)?;
            new.push(Position { qty: l.qty, value: share });
        }
        Ok(LayerOp::Replace { old, new })
    }

    /// Receives goods moved from another position (a transfer between warehouses now,
    /// between branches through an in-transit warehouse later) with what `issue` — a
    /// [`Stock::take`] there — took. Under FIFO/LIFO each taken layer arrives whole, with
    /// its quantity and value, in receipt order (oldest first) behind the layers already
    /// here, so the goods are issued here at the costs they were bought at; merging them
    /// into one averaged layer would change every later cost. Under moving average the
    /// goods join the average. One op per layer, to apply in order.
    pub fn receive_moved(method: CostMethod, issue: &LayerOp) -> Vec<LayerOp> {
        match (method, issue) {
            (CostMethod::Fifo | CostMethod::Lifo, LayerOp::Take { from_front, taken, .. }) => {
                // `taken` is nearest the issuing end first: oldest first under FIFO,
                // newest first under LIFO.
                let in_receipt_order: Vec<&Position> = if *from_front { taken.iter().collect() } else { taken.iter().rev().collect() };
                in_receipt_order.into_iter().map(|l| LayerOp::PushBack(*l)).collect()
            }
            (_, op) => {
                let (qty, value) = op.moved();
                vec![Stock::receive(method, qty, value)]
            }
        }
    }

    /// Receives `qty` worth `value`.
    pub fn receive(method: CostMethod, qty: Decimal, value: Decimal) -> LayerOp {
        match method {
            CostMethod::MovingAverage => LayerOp::Average { qty, value },
            CostMethod::Fifo | CostMethod::Lifo => LayerOp::PushBack(Position { qty, value }),
        }
    }

    /// Applies an op computed against this very state. Posting applies every op to a copy
    /// first with [`Stock::try_apply`], so an overflow here is a programmer error.
    pub fn apply(&mut self, op: &LayerOp) {
        self.try_apply(op).expect("posting applied this op to a copy of this very position, which fit");
    }

    /// Applies an op computed against this very state, its sums checked. On `Err` the state
    /// may be half-changed: posting calls it on scratch copies only.
    pub fn try_apply(&mut self, op: &LayerOp) -> Result<(), Overflow> {
        const WHAT: &str = "the stock's quantity or value";
        let add_to = |p: &mut Position, l: &Position| -> Result<(), Overflow> {
            p.qty = add(p.qty, l.qty, WHAT)?;
            p.value = add(p.value, l.value, WHAT)?;
            Ok(())
        };
        let take_from = |p: &mut Position, l: &Position| -> Result<(), Overflow> {
            p.qty = sub(p.qty, l.qty, WHAT)?;
            p.value = sub(p.value, l.value, WHAT)?;
            Ok(())
        };
        match op {
            LayerOp::Average { qty, value } => {
                add_to(&mut self.pos, &Position { qty: *qty, value: *value })?;
                // Moving average never lets stock go negative; a posting that would is a
                // bug that would corrupt every later cost, so it stops here in release too.
                assert!(self.pos.qty >= Decimal::ZERO, "no cost method allows negative stock");
            }
            LayerOp::PushBack(l) => {
                add_to(&mut self.pos, l)?;
                self.layers.push_back(*l);
            }
            LayerOp::Untake { at_front, taken, rejoin } => {
                // Deepest first, so the layer taken first ends up at the end again.
                for (i, l) in taken.iter().enumerate().rev() {
                    add_to(&mut self.pos, l)?;
                    if *rejoin && i + 1 == taken.len() {
                        let end = if *at_front { self.layers.front_mut() } else { self.layers.back_mut() };
                        let end = end.expect("rejoin was computed against these layers");
                        add_to(end, l)?;
                    } else if *at_front {
                        self.layers.push_front(*l);
                    } else {
                        self.layers.push_back(*l);
                    }
                }
            }
            LayerOp::Take { from_front, taken, .. } => {
                for t in taken {
                    let layer = if *from_front { self.layers.front_mut() } else { self.layers.back_mut() };
                    let layer = layer.expect("take was computed against these layers");
                    take_from(layer, t)?;
                    let spent = layer.qty.is_zero();
                    // A spent layer that kept value would leave money on zero stock.
                    assert!(!spent || layer.value.is_zero(), "a spent layer keeps no value");
                    take_from(&mut self.pos, t)?;
                    if spent {
                        if *from_front {
                            self.layers.pop_front();
                        } else {
                            self.layers.pop_back();
                        }
                    }
                }
            }
            LayerOp::Remove { index, layer } => {
                let removed = self.layers.remove(*index).expect("remove was computed against these layers");
                assert_eq!(removed, *layer, "remove was computed against these layers");
                take_from(&mut self.pos, layer)?;
            }
            LayerOp::Replace { old, new } => {
                assert!(self.layers.iter().eq(old.iter()), "a cost adjustment was computed against these layers");
                let pos = Position { qty: sum(new.iter().map(|l| l.qty), WHAT)?, value: sum(new.iter().map(|l| l.value), WHAT)? };
                self.layers = new.iter().copied().collect();
                self.pos = pos;
            }
        }
        Ok(())
    }

    /// The op that undoes `op` (for red-letter reversals), if the state still allows it.
    pub fn undo(&self, op: &LayerOp) -> Option<LayerOp> {
        match op {
            LayerOp::Average { qty, value } => {
                let (q, v) = (-*qty, -*value);
                // Taking goods (or value) back out must leave a position that could exist:
                // no negative quantity or value, no value on zero stock. Once goods have
                // been issued at an average that included them, undoing can break that.
                let (Some(q_after), Some(v_after)) = (self.pos.qty.checked_add(q), self.pos.value.checked_add(v)) else { return None };
                let possible = q_after >= Decimal::ZERO && v_after >= Decimal::ZERO && (!q_after.is_zero() || v_after.is_zero());
                possible.then_some(LayerOp::Average { qty: q, value: v })
            }
            LayerOp::PushBack(l) => {
                // The received layer must still be whole; search from the back, where it went.
                let index = self.layers.iter().rposition(|x| x == l)?;
                Some(LayerOp::Remove { index, layer: *l })
            }
            LayerOp::Take { from_front, taken, rest } => {
                // Put the goods back where they were taken from, in their layers, so the
                // next issue is costed as if this one never happened. The split layer is
                // rejoined only if its remainder is still untouched at the end.
                let end = if *from_front { self.layers.front() } else { self.layers.back() };
                let rejoin = rest.is_some() && end == rest.as_ref();
                Some(LayerOp::Untake { at_front: *from_front, taken: taken.clone(), rejoin })
            }
            // A cost adjustment is undone while its layers are as it left them.
            LayerOp::Replace { old, new } => {
                self.layers.iter().eq(new.iter()).then(|| LayerOp::Replace { old: new.clone(), new: old.clone() })
            }
            LayerOp::Untake { .. } | LayerOp::Remove { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    fn apply(s: &mut Stock, op: LayerOp) {
        s.apply(&op);
    }

    #[test]
    fn fifo_and_lifo_take_from_opposite_ends() {
        let mut s = Stock::default();
        apply(&mut s, Stock::receive(CostMethod::Fifo, dec!(10), dec!(30.00)));
        apply(&mut s, Stock::receive(CostMethod::Fifo, dec!(10), dec!(40.00)));
        // FIFO: 15 out = 10 @ 3.00 (30.00) + 5 of the 4.00 layer (20.00) = 50.00.
        let (op, v) = s.take(CostMethod::Fifo, dec!(15)).expect("fits").expect("enough");
        assert_eq!(v, dec!(50.00));
        let (_, v_lifo) = s.take(CostMethod::Lifo, dec!(15)).expect("fits").expect("enough");
        // LIFO: 10 @ 4.00 (40.00) + 5 @ 3.00 (15.00) = 55.00.
        assert_eq!(v_lifo, dec!(55.00));
        apply(&mut s, op.clone());
        assert_eq!(s.pos, Position { qty: dec!(5), value: dec!(20.00) });
        // Undo puts the taken layers back in front, the split one rejoined.
        let undo = s.undo(&op).expect("undoable");
        apply(&mut s, undo);
        assert_eq!(s.pos, Position { qty: dec!(20), value: dec!(70.00) });
        assert_eq!(s.layers, [Position { qty: dec!(10), value: dec!(30.00) }, Position { qty: dec!(10), value: dec!(40.00) }]);
        assert!(s.take(CostMethod::Fifo, dec!(21)).expect("fits").is_none());
    }
}
