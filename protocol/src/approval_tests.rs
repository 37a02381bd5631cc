//! Tests of the approval rule (each kind, its threshold, reversals exempt, the default
//! needing nothing) and of the signed draft message (round trip, forged, other branch,
//! newer format, oversized, trailing bytes, id 0).

use rust_decimal_macros::dec;

use super::*;
use crate::books::{post, PostContext};
use crate::codes::{OperatorId, PartyCode, ProductCode, WarehouseCode};
use crate::date::BusinessDate;
use crate::document::{DocExt, Line};
use crate::testkit::test_key;

fn sh() -> BranchCode {
    BranchCode::new("SH").expect("code")
}

fn profile(rules: ApprovalRules) -> BranchProfile {
    let mut p: BranchProfile = serde_json::from_value(serde_json::json!({
        "branch": "SH", "name": "上海", "warehouses": ["SH01"], "products": {}, "version": 1,
        "credit_limits": { "200102": "10.00" },
    }))
    .expect("test profile deserializes");
    p.approvals = rules;
    p
}

fn draft(t: DocType, lines: &[(&str, Decimal, Decimal)]) -> Draft {
    Draft {
        doc_type: t,
        date: BusinessDate::new(2026, 6, 9).expect("date"),
        operator: OperatorId::new("clerk").expect("login"),
        warehouse: WarehouseCode::new("SH01").expect("warehouse"),
        counterparty: matches!(t, DocType::Sale).then(|| PartyCode::new("200102").expect("party")),
        memo: String::new(),
        payment: None,
        lines: lines.iter().map(|(p, q, u)| Line::priced(ProductCode::new(*p).expect("product"), *q, *u)).collect(),
        ext: DocExt::default(),
    }
}

/// Books holding 10 × P1 at 3.00 (value 30.00), from a stock gain.
fn stocked() -> Books {
    let doc = draft(DocType::StockGain, &[("P1", dec!(10), dec!(3.00))]).number(sh(), 1).expect("valid");
    let mut books = Books::default();
    let p = post(&books, &doc, PostContext::default()).expect("gain posts");
    books.apply(&doc, &p);
    books
}

fn judge(books: &Books, d: Draft, rules: ApprovalRules) -> Vec<Need> {
    let doc = d.number(sh(), 2).expect("valid");
    let p = post(books, &doc, PostContext::default()).expect("posts");
    needs_approval(&doc, &p, books, &profile(rules))
}

#[test]
fn without_rules_nothing_needs_approval() {
    let books = stocked();
    assert!(judge(&books, draft(DocType::StockLoss, &[("P1", dec!(10), dec!(3.00))]), ApprovalRules::default()).is_empty());
    assert!(judge(&books, draft(DocType::Sale, &[("P1", dec!(1), dec!(0))]), ApprovalRules::default()).is_empty());
}

#[test]
fn a_stock_loss_needs_approval_above_the_threshold_at_cost() {
    let books = stocked();
    let rules = |t: Decimal| ApprovalRules { stock_loss_above: Some(t), ..Default::default() };
    // 5 × 3.00 at cost = 15.00, whatever price the line names.
    let loss = || draft(DocType::StockLoss, &[("P1", dec!(5), dec!(0.01))]);
    assert_eq!(judge(&books, loss(), rules(dec!(10))), vec![Need::StockLossAbove { value: dec!(15.00), threshold: dec!(10) }]);
    assert!(judge(&books, loss(), rules(dec!(15.00))).is_empty(), "at the threshold is allowed");
    assert!(judge(&books, loss(), rules(dec!(20))).is_empty());
}

#[test]
fn gifts_below_cost_and_over_the_credit_limit() {
    let books = stocked();
    let gift = judge(
        &books,
        draft(DocType::Sale, &[("P1", dec!(1), dec!(4.00)), ("P1", dec!(1), dec!(0))]),
        ApprovalRules { gifts: true, ..Default::default() },
    );
    assert_eq!(gift, vec![Need::Gift { line: 2, product: "P1".into() }]);
    let cheap = ApprovalRules { below_cost: true, ..Default::default() };
    let below = judge(&books, draft(DocType::Sale, &[("P1", dec!(2), dec!(1.00))]), cheap.clone());
    assert_eq!(below, vec![Need::BelowCost { revenue: dec!(2.00), cost: dec!(6.00) }]);
    assert!(judge(&books, draft(DocType::Sale, &[("P1", dec!(2), dec!(3.00))]), cheap).is_empty(), "at cost is allowed");
    let credit = ApprovalRules { over_credit_limit: true, ..Default::default() };
    // A credit sale of 4 × 3.50 = 14.00 to a customer with limit 10.00.
    let over = judge(&books, draft(DocType::Sale, &[("P1", dec!(4), dec!(3.50))]), credit.clone());
    assert_eq!(over, vec![Need::OverCreditLimit { customer: "200102".into(), owed_after: dec!(14.00), limit: dec!(10.00) }]);
    assert!(judge(&books, draft(DocType::Sale, &[("P1", dec!(2), dec!(3.50))]), credit).is_empty());
    assert!(describe(&over).contains("over its credit limit 10.00"), "{}", describe(&over));
}

#[test]
fn a_reversal_never_needs_approval() {
    let books = stocked();
    let rules = ApprovalRules { stock_loss_above: Some(dec!(1)), ..Default::default() };
    let mut d = draft(DocType::StockLoss, &[("P1", dec!(5), dec!(3.00))]);
    d.ext.reverses = Some(crate::document::DocNumber::parse("BY-SH-0609-001").expect("number"));
    let doc = d.number(sh(), 2).expect("valid");
    let p = Posting::default();
    assert!(needs_approval(&doc, &p, &books, &profile(rules)).is_empty());
}

#[test]
fn the_posted_document_must_be_the_approved_draft() {
    let d = draft(DocType::StockLoss, &[("P1", dec!(5), dec!(3.00))]);
    let mut posted = d.clone();
    posted.ext.approval = Some(7);
    posted.operator = OperatorId::new("other").expect("login");
    let doc = posted.clone().number(sh(), 3).expect("valid");
    assert!(matches(&d, &doc), "the approval reference and the operator aside, the same");
    let mut changed = posted;
    changed.lines[0].qty = dec!(6);
    changed.lines[0].amount = dec!(18.00);
    assert!(!matches(&d, &changed.number(sh(), 3).expect("valid")));
}

fn up(id: u64) -> DraftUp {
    DraftUp {
        branch: sh(),
        id,
        created_unix: 5,
        profile_version: 2,
        draft: draft(DocType::StockLoss, &[("P1", dec!(5), dec!(3.00))]),
        needs: vec![Need::StockLossAbove { value: dec!(15), threshold: dec!(10) }],
    }
}

#[test]
fn a_signed_draft_round_trips_and_forged_or_foreign_ones_are_refused() {
    let (branch_key, mallory) = (test_key(3), test_key(4));
    let signed = SignedDraft::sign(&up(1), &branch_key).expect("sign");
    let wire = SignedDraft::from_bytes(&signed.to_bytes()).expect("frame");
    assert_eq!(wire.open(&sh(), &branch_key.verifying_key()).expect("open"), up(1));
    // Signed by another key.
    let forged = SignedDraft::sign(&up(1), &mallory).expect("sign");
    assert!(matches!(forged.open(&sh(), &branch_key.verifying_key()), Err(DraftError::Forged { .. })));
    // One flipped bit of the body.
    let mut flipped = signed.clone();
    flipped.body_bytes[3] ^= 1;
    assert!(matches!(flipped.open(&sh(), &branch_key.verifying_key()), Err(DraftError::Forged { .. })));
    // Signed by the right key but naming another branch (sent on SH's connection).
    let mut other = up(1);
    other.branch = BranchCode::new("HB").expect("code");
    let other = SignedDraft::sign(&other, &branch_key).expect("sign");
    assert!(matches!(other.open(&sh(), &branch_key.verifying_key()), Err(DraftError::OtherBranch { .. })));
    // Id 0 is never signed nor read.
    assert_eq!(SignedDraft::sign(&up(0), &branch_key), Err(DraftError::ZeroId));
}

#[test]
fn newer_formats_oversized_and_trailing_bytes_are_refused() {
    let key = test_key(3);
    let resign = |mut body: Vec<u8>, f: &dyn Fn(&mut Vec<u8>)| {
        f(&mut body);
        let signature = key.sign(&body);
        SignedDraft { body_bytes: body, signature }
    };
    let body = SignedDraft::sign(&up(1), &key).expect("sign").body_bytes;
    let newer = resign(body.clone(), &|b| b[0] = DRAFT_FORMAT_VERSION + 1);
    assert!(matches!(newer.open(&sh(), &key.verifying_key()), Err(DraftError::UnsupportedVersion { found: 2, supported: 1 })));
    let tail = resign(body, &|b| b.push(0));
    assert!(matches!(tail.open(&sh(), &key.verifying_key()), Err(DraftError::Malformed(_))));
    let big = SignedDraft { body_bytes: vec![DRAFT_FORMAT_VERSION; DRAFT_BODY_BYTES_MAX + 1], signature: key.sign(b"x") };
    assert!(matches!(big.open(&sh(), &key.verifying_key()), Err(DraftError::TooLarge { .. })));
    assert!(matches!(SignedDraft::from_bytes(&vec![0; DRAFT_BODY_BYTES_MAX + 81]), Err(DraftError::TooLarge { .. })));
    let mut many = up(1);
    many.needs = vec![many.needs[0].clone(); DRAFT_REASONS_MAX + 1];
    assert!(matches!(SignedDraft::sign(&many, &key), Err(DraftError::TooManyReasons { .. })));
}
