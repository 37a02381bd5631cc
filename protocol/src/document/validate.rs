//! Validation of a document on its own: parties, memo, payment, ext fields and lines, each
//! within its bound. Must not: look at the books (stock, scope, products are the ledger's).

use super::*;

pub(super) fn validate_parts(
    doc_type: DocType,
    counterparty: &Option<PartyCode>,
    memo: &str,
    payment: Option<&Payment>,
    lines: &[Line],
    ext: &DocExt,
) -> Result<(), DocError> {
    let name = doc_type.name();
    if let Some(role) = doc_type.counterparty_role() {
        if counterparty.is_none() {
            return Err(DocError::MissingCounterparty { doc_type: name, role });
        }
    }
    let memo_chars = memo.chars().count();
    if memo_chars > MEMO_CHARS_MAX {
        return Err(DocError::MemoTooLong { len: memo_chars, max: MEMO_CHARS_MAX });
    }
    // Printed on receipts and reports: the one text rule, on both sides.
    crate::text::check("memo", memo)?;
    if lines.len() > DOC_LINES_MAX {
        return Err(DocError::TooManyLines { count: lines.len(), max: DOC_LINES_MAX });
    }
    let items = ext.settles.len().max(ext.balances.len()).max(ext.entries.len());
    if items > DOC_EXT_ITEMS_MAX {
        return Err(DocError::TooManyLines { count: items, max: DOC_EXT_ITEMS_MAX });
    }
    if ext.category.as_ref().is_some_and(|c| c.is_empty() || c.len() > 16 || !c.chars().all(|ch| ch.is_ascii_alphanumeric())) {
        return Err(DocError::Field { doc_type: name, what: "category must be 1-16 letters or digits (it becomes a sub-account)" });
    }
    let need = |ok: bool, what: &'static str| if ok { Ok(()) } else { Err(DocError::Field { doc_type: name, what }) };
    if matches!(doc_type, DocType::SalesReturn | DocType::PurchaseReturn) {
        need(ext.returns.is_some(), "needs the original document it returns (returns: the sale or purchase receipt)")?;
    } else {
        need(ext.returns.is_none(), "names no original (returns is for sales and purchase returns)")?;
    }
    let mut figures = ext
        .money
        .iter()
        .chain(ext.settles.iter().map(|s| &s.amount))
        .chain(ext.balances.iter().map(|b| &b.amount))
        .chain(ext.entries.iter().flat_map(|e| [&e.debit, &e.credit]))
        .chain(payment.into_iter().flat_map(|p| [&p.tendered, &p.change]));
    need(figures.all(|d| d.abs() <= AMOUNT_MAX), "amounts must not exceed 10^15 yuan")?;
    match doc_type.shape() {
        Shape::Goods => {
            if lines.is_empty() {
                return Err(DocError::NoLines);
            }
            validate_lines(lines)?;
            need(
                ext.money.is_none() && ext.balances.is_empty() && ext.entries.is_empty(),
                "takes goods lines, not money, balances or journal lines",
            )?;
        }
        Shape::Money => {
            need(lines.is_empty(), "takes an amount of money, not goods lines")?;
            let money = ext.money.ok_or(DocError::Field { doc_type: name, what: "needs the amount (money)" })?;
            need(money > Decimal::ZERO && money.scale() <= MONEY_SCALE, "amount must be positive, in yuan and fen (two decimals at most)")?;
            let settled: Decimal = ext.settles.iter().map(|s| s.amount).sum();
            need(
                ext.settles.iter().all(|s| s.amount > Decimal::ZERO && s.amount.scale() <= MONEY_SCALE),
                "each settled amount must be positive",
            )?;
            need(settled <= money, "settles more than the amount paid")?;
        }
        Shape::Opening => {
            need(!lines.is_empty() || !ext.balances.is_empty(), "needs opening stock lines or balances")?;
            validate_lines(lines)?;
            need(
                ext.balances.iter().all(|b| b.amount.scale() <= MONEY_SCALE && !b.amount.is_zero()),
                "opening balances must be non-zero, two decimals at most",
            )?;
        }
        Shape::Manual => {
            need(lines.is_empty() && ext.entries.len() >= 2, "needs at least two journal lines and no goods lines")?;
            for e in &ext.entries {
                let one_sided = (e.debit > Decimal::ZERO && e.credit.is_zero()) || (e.credit > Decimal::ZERO && e.debit.is_zero());
                need(
                    one_sided && e.debit.scale() <= MONEY_SCALE && e.credit.scale() <= MONEY_SCALE,
                    "each journal line is either a positive debit or a positive credit",
                )?;
            }
            let debit: Decimal = ext.entries.iter().map(|e| e.debit).sum();
            let credit: Decimal = ext.entries.iter().map(|e| e.credit).sum();
            if debit != credit {
                return Err(DocError::Unbalanced { debit, credit });
            }
        }
        Shape::Close => need(lines.is_empty() && ext.period.is_some(), "needs the period (year and month) and nothing else")?,
    }
    match doc_type {
        DocType::TransferSamePrice | DocType::TransferChangedPrice => {
            need(ext.to_warehouse.is_some(), "needs the receiving warehouse (to_warehouse)")?
        }
        DocType::FundTransfer => need(
            ext.account.is_some() && ext.to_account.is_some() && ext.account != ext.to_account,
            "needs two different accounts (account, to_account)",
        )?,
        DocType::Payment | DocType::Receipt => need(ext.account.is_some(), "needs the cash/bank account")?,
        DocType::Expense | DocType::OtherIncome => {
            need(ext.account.is_some() && ext.category.is_some(), "needs the cash/bank account and a category")?
        }
        _ => {}
    }
    transfer_parts(doc_type, lines, ext, &need)?;
    let assembly = doc_type == DocType::Assembly;
    let has = |r: LineRole| lines.iter().any(|l| l.role == r);
    if assembly {
        need(has(LineRole::Consumed) && has(LineRole::Produced) && !has(LineRole::Normal), "needs consumed and produced lines")?;
    } else {
        need(!has(LineRole::Consumed) && !has(LineRole::Produced), "only assemblies have consumed/produced lines")?;
    }
    // Money that reduces what a party owes or is owed may say which documents it clears:
    // payments and receipts, credit returns, and receivable/payable decreases.
    let settles_ok = matches!(
        doc_type,
        DocType::Payment
            | DocType::Receipt
            | DocType::SalesReturn
            | DocType::PurchaseReturn
            | DocType::ReceivableDecrease
            | DocType::PayableDecrease
    );
    need(ext.settles.is_empty() || settles_ok, "only payments, receipts, returns and decreases settle documents")?;
    need(
        ext.settles.is_empty() || doc_type.shape() != Shape::Goods || ext.account.is_none(),
        "a cash return settles nothing; leave out settles or account",
    )?;
    if doc_type.shape() == Shape::Goods && !ext.settles.is_empty() {
        let total: Decimal = lines.iter().map(|l| l.amount).sum();
        let settled: Decimal = ext.settles.iter().map(|s| s.amount).sum();
        need(
            ext.settles.iter().all(|s| s.amount > Decimal::ZERO && s.amount.scale() <= MONEY_SCALE),
            "each settled amount must be positive",
        )?;
        need(settled <= total, "settles more than the return is worth")?;
    }
    need(
        ext.reverses.is_none() || !matches!(doc_type, DocType::PeriodClose | DocType::PeriodReopen | DocType::Opening),
        "cannot be reversed",
    )?;
    need(ext.cost_method.is_none() || doc_type == DocType::Opening, "only the opening sets the cost method")?;
    match (doc_type, payment) {
        (DocType::Retail, None) => return Err(DocError::MissingPayment),
        (DocType::Retail, Some(p)) => p.check(lines.iter().map(|l| l.amount).sum())?,
        (_, Some(_)) => return Err(DocError::UnexpectedPayment { doc_type: name }),
        (_, None) => {}
    }
    Ok(())
}

/// The transfer steps' own fields: the order on every step (and only there), a receipt's
/// shipment, a settlement's decision, the cost layers where goods move between branches
/// (each product's layers adding up to its lines' quantity), and no reversal: a step is
/// corrected by a settlement HQ orders, since the other branch has acted on it.
fn transfer_parts(
    doc_type: DocType,
    lines: &[Line],
    ext: &DocExt,
    need: &dyn Fn(bool, &'static str) -> Result<(), DocError>,
) -> Result<(), DocError> {
    let step = matches!(doc_type, DocType::TransferShip | DocType::TransferReceive | DocType::TransferSettle);
    if !step {
        need(ext.transfer.is_none(), "names no transfer order (only transfer shipments, receipts and settlements do)")?;
        need(ext.layers.is_empty(), "carries no cost layers (only transfer steps do)")?;
        return Ok(());
    }
    let t = ext
        .transfer
        .as_ref()
        .ok_or(DocError::Field { doc_type: doc_type.name(), what: "needs the HQ transfer order it belongs to (transfer.order)" })?;
    need(ext.reverses.is_none(), "cannot be reversed: the other branch has acted on it; HQ settles a wrong step instead")?;
    need(ext.to_warehouse.is_none() && ext.account.is_none(), "moves goods between branches only (no to_warehouse or account)")?;
    match doc_type {
        DocType::TransferShip => need(t.shipment.is_none() && t.settle.is_none() && !t.last, "a shipment names only its order")?,
        DocType::TransferReceive => {
            need(t.shipment.is_some() && t.settle.is_none(), "a receipt names the shipment it receives (transfer.shipment)")?
        }
        _ => need(t.settle.is_some() && t.shipment.is_none() && !t.last, "a settlement names HQ's decision (transfer.settle)")?,
    }
    need(
        (t.priced && doc_type != DocType::TransferSettle) || lines.iter().all(|l| l.unit_price.is_zero()),
        "carries no line prices (at same price; a settlement's price is in its layers)",
    )?;
    need(ext.layers.len() <= DOC_EXT_ITEMS_MAX, "carries too many cost layers")?;
    let mut per_product: std::collections::BTreeMap<ProductCode, Decimal> = std::collections::BTreeMap::new();
    for l in lines {
        *per_product.entry(l.product).or_default() += l.qty;
    }
    for c in &ext.layers {
        need(
            c.qty > Decimal::ZERO
                && c.value >= Decimal::ZERO
                && c.value <= AMOUNT_MAX
                && c.at_price >= Decimal::ZERO
                && c.at_price <= AMOUNT_MAX,
            "cost layers have a positive quantity and a value ≥ 0",
        )?;
        need(
            c.at_price.is_zero() || (doc_type == DocType::TransferSettle && t.priced),
            "only a settlement at a transfer price gives layers a price",
        )?;
        let left = per_product
            .get_mut(&c.product)
            .ok_or(DocError::Field { doc_type: doc_type.name(), what: "names cost layers of a product it has no line for" })?;
        *left -= c.qty;
    }
    need(per_product.values().all(|q| q.is_zero()), "needs cost layers adding up to each product's quantity")?;
    Ok(())
}

pub(super) fn validate_lines(lines: &[Line]) -> Result<(), DocError> {
    for (i, l) in lines.iter().enumerate() {
        let line = i + 1;
        if l.qty <= Decimal::ZERO {
            return Err(DocError::NonPositiveQty { line, qty: l.qty });
        }
        if l.unit_price < Decimal::ZERO {
            return Err(DocError::NegativePrice { line, price: l.unit_price });
        }
        if l.qty.scale() > QTY_SCALE_MAX {
            return Err(DocError::TooPrecise { line, field: "quantity", value: l.qty, max: QTY_SCALE_MAX });
        }
        if l.unit_price.scale() > PRICE_SCALE_MAX {
            return Err(DocError::TooPrecise { line, field: "unit price", value: l.unit_price, max: PRICE_SCALE_MAX });
        }
        if l.qty > QTY_MAX {
            return Err(DocError::Overflow { line });
        }
        let expected = round_money(l.qty.checked_mul(l.unit_price).ok_or(DocError::Overflow { line })?);
        if expected > AMOUNT_MAX {
            return Err(DocError::Overflow { line });
        }
        if l.amount != expected {
            return Err(DocError::AmountMismatch { line, given: l.amount, expected });
        }
    }
    Ok(())
}
