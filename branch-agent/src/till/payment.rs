//! Taking payment at the till: the method the cashier pressed, what the customer handed
//! over, and the `Payment` the retail document carries. The rules themselves (enough
//! tendered, exact change, change only for cash) are `protocol`'s `Payment::check`, the
//! same check HQ runs on every retail document; this module only puts them in the
//! cashier's words. Pure: no store, device, clock or HTTP.
//!
//! Must not: hold a payment rule of its own.

use devices::receipt::money;
use protocol::document::{Payment, PaymentMethod, MONEY_SCALE};
use protocol::error::DocError;
use protocol::Decimal;

use super::error::TillError;

/// The payment for `total`: change for cash, the exact total for card and mobile (which
/// may leave `tendered` out).
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
    // Lossless: the scale is at most MONEY_SCALE here.
    tendered.rescale(MONEY_SCALE);
    let payment = Payment { method, tendered, change: tendered - total };
    payment.check(total).map_err(|e| match e {
        DocError::Underpaid { .. } => TillError::Refused(format!(
            "tendered {} is less than the total {}: take {} more",
            money(tendered),
            money(total),
            money(total - tendered)
        )),
        DocError::ChangeNotCash { method, .. } => {
            TillError::Refused(format!("a {method} payment takes exactly the total {}; change is given only for cash", money(total)))
        }
        other => TillError::Refused(other.to_string()),
    })?;
    Ok(payment)
}

/// The payment method a request names, in English or Chinese.
pub fn parse_method(s: &str) -> Option<PaymentMethod> {
    match s.trim().to_ascii_lowercase().as_str() {
        "cash" | "现金" => Some(PaymentMethod::Cash),
        "card" | "银行卡" => Some(PaymentMethod::Card),
        "mobile" | "wechat" | "alipay" | "移动支付" => Some(PaymentMethod::Mobile),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rust_decimal_macros::dec;

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
        assert_eq!(e.to_string(), "a Mobile payment takes exactly the total 12.40; change is given only for cash");
        let exact = take_payment(PaymentMethod::Cash, Some(total), total).expect("exact cash");
        assert_eq!(exact.change, Decimal::ZERO);
        assert_eq!(parse_method("cash"), Some(PaymentMethod::Cash));
        assert_eq!(parse_method("Mobile"), Some(PaymentMethod::Mobile));
        assert_eq!(parse_method("cheque"), None);
    }

    fn any_method() -> impl Strategy<Value = PaymentMethod> {
        prop_oneof![Just(PaymentMethod::Cash), Just(PaymentMethod::Card), Just(PaymentMethod::Mobile)]
    }

    proptest! {
        /// The till takes exactly the payments the retail document's validation accepts,
        /// and what it takes is in cents with change = tendered - total, never negative,
        /// and zero unless paid in cash.
        #[test]
        fn taken_payments_follow_the_rule(
            method in any_method(),
            total_cents in 0i64..10_000_000,
            tendered in proptest::option::of((0i64..20_000_000, 0u32..4).prop_map(|(m, s)| Decimal::new(m, s))),
        ) {
            let total = Decimal::new(total_cents, 2);
            match take_payment(method, tendered, total) {
                Ok(p) => {
                    prop_assert_eq!(p.check(total), Ok(()));
                    prop_assert_eq!(p.method, method);
                    prop_assert_eq!(p.tendered.scale(), MONEY_SCALE);
                    prop_assert_eq!(Some(p.tendered), tendered.or(Some(total)));
                    prop_assert_eq!(p.change, p.tendered - total);
                    prop_assert!(p.change >= Decimal::ZERO);
                    prop_assert!(method == PaymentMethod::Cash || p.change.is_zero());
                }
                Err(e) => {
                    prop_assert!(matches!(e, TillError::Refused(_)), "{e:?}");
                    let refused = match tendered {
                        None => method == PaymentMethod::Cash,
                        Some(t) => t.scale() > MONEY_SCALE || t < total || (method != PaymentMethod::Cash && t != total),
                    };
                    prop_assert!(refused, "{method:?} {tendered:?} for {total} refused: {e}");
                }
            }
        }
    }
}
