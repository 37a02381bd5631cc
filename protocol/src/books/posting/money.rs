//! Money documents: receipts and payments (收款单 / 付款单) that settle open items,
//! expenses, other income and transfers between our own cash/bank accounts, and
//! receivable/payable adjustments (应收/应付 增加/减少).
//!
//! Must not: move goods (money documents carry no lines).

use super::acc::{self, code};
use super::{categorised, sub, Builder, PostError, Side};
use crate::codes::AccountCode;
use crate::document::DocType;

/// 收款单 / 付款单: money in from a customer or out to a supplier through `account`,
/// settling the open items named in `ext.settles`; what exceeds the balance is an advance.
pub(super) fn settlement(b: &mut Builder<'_>, account: Option<AccountCode>) -> Result<(), PostError> {
    let (side, control) = match b.doc_type() {
        DocType::Receipt => (Side::Receivable, acc::RECEIVABLE),
        t => {
            assert_eq!(t, DocType::Payment);
            (Side::Payable, acc::PAYABLE)
        }
    };
    assert!(b.doc.lines.is_empty(), "a money document has no lines (validated by post)");
    let money = b.money()?;
    let a = b.need(account, "needs the cash/bank account")?;
    let p = b.party()?;
    b.settle(side, &p)?;
    if side == Side::Receivable {
        b.dr_cr(a, code(control), money);
    } else {
        b.dr_cr(code(control), a, money);
    }
    // What exceeds the balance is an advance: the balance simply goes past zero.
    b.party_move(side, p, -money);
    Ok(())
}

/// 费用单 / 其他收入 / 转款: money out to an expense category, in from an income category,
/// or from `account` to `ext.to_account`.
pub(super) fn cash_and_bank(b: &mut Builder<'_>, account: Option<AccountCode>) -> Result<(), PostError> {
    assert!(b.doc.lines.is_empty(), "a money document has no lines (validated by post)");
    let ext = &b.doc.header.ext;
    let money = b.money()?;
    match b.doc_type() {
        DocType::Expense => {
            let cat = b.need(ext.category.as_deref(), "needs the cash/bank account and a category")?;
            let a = b.need(account, "needs the cash/bank account and a category")?;
            b.dr_cr(sub(acc::EXPENSES, cat)?, a, money);
        }
        DocType::OtherIncome => {
            let cat = b.need(ext.category.as_deref(), "needs the cash/bank account and a category")?;
            let a = b.need(account, "needs the cash/bank account and a category")?;
            b.dr_cr(a, sub(acc::OTHER_INCOME, cat)?, money);
        }
        t => {
            assert_eq!(t, DocType::FundTransfer);
            let to = b.money_account(&ext.to_account)?;
            let to = b.need(to, "needs two different accounts (account, to_account)")?;
            let from = b.need(account, "needs two different accounts (account, to_account)")?;
            b.dr_cr(to, from, money);
        }
    }
    Ok(())
}

/// 应收/应付 增加/减少: a party's balance moves without goods or money. The other side goes
/// to other income or expenses, to the sub-account of `ext.category` when the document
/// names one (e.g. `6301.REBATE`). Increases open an item; decreases settle `ext.settles`.
pub(super) fn adjust_balance(b: &mut Builder<'_>) -> Result<(), PostError> {
    assert!(b.doc.lines.is_empty(), "a money document has no lines (validated by post)");
    let category = &b.doc.header.ext.category;
    let money = b.money()?;
    let p = b.party()?;
    match b.doc_type() {
        DocType::ReceivableIncrease => {
            b.dr_cr(code(acc::RECEIVABLE), categorised(acc::OTHER_INCOME, category)?, money);
            b.party_move(Side::Receivable, p, money);
            b.open_item(Side::Receivable, p, money);
        }
        DocType::ReceivableDecrease => {
            b.dr_cr(categorised(acc::EXPENSES, category)?, code(acc::RECEIVABLE), money);
            b.party_move(Side::Receivable, p, -money);
            b.settle(Side::Receivable, &p)?;
        }
        DocType::PayableIncrease => {
            b.dr_cr(categorised(acc::EXPENSES, category)?, code(acc::PAYABLE), money);
            b.party_move(Side::Payable, p, money);
            b.open_item(Side::Payable, p, money);
        }
        t => {
            assert_eq!(t, DocType::PayableDecrease);
            b.dr_cr(code(acc::PAYABLE), categorised(acc::OTHER_INCOME, category)?, money);
            b.party_move(Side::Payable, p, -money);
            b.settle(Side::Payable, &p)?;
        }
    }
    Ok(())
}
