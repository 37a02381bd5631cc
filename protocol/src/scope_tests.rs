//! Scope rules and their text: parse and print round-trip, each rule kind matches what
//! it says and nothing more, refusals name the rule.

use proptest::prelude::*;

use super::*;

fn sh() -> Whose {
    Whose::Branch(BranchCode::new("SH").expect("code"))
}

#[test]
fn the_seed_clerk_message_names_the_rule() {
    let scope: Scope = "customers=200*".parse().expect("scope");
    let err = scope.check(&sh(), ScopeKind::Customers, "310-0042").expect_err("outside");
    assert_eq!(err.to_string(), "customer 310-0042 is outside SH's customers 200*; ask HQ to widen the scope");
    assert!(scope.check(&sh(), ScopeKind::Customers, "200102").is_ok());
    let none = scope.check(&sh(), ScopeKind::Warehouses, "SH01").expect_err("closed by default");
    assert_eq!(none.to_string(), "warehouse SH01 is outside SH's warehouses (none); ask HQ to widen the scope");
}

#[test]
fn patterns_match_as_documented() {
    let rule = Rule::parse_patterns("01,02*,300100..300199,SH01-T").expect("rule");
    for yes in ["01", "02", "0201", "300100", "300150", "300199", "SH01-T"] {
        assert!(rule.allows(yes), "{yes}");
    }
    for no in ["0101", "0", "300200", "300099", "3001000", "30015", "SH01"] {
        assert!(!rule.allows(no), "{no}");
    }
    assert!(Rule::all().allows("anything"));
    assert!(!Rule::none().allows("01"));
}

#[test]
fn both_scopes_must_allow_and_the_branch_is_named_first() {
    let branch: Scope = "categories=01*; customers=200*".parse().expect("scope");
    let person = Scope::all().with(ScopeKind::Categories, Rule::parse_patterns("0101").expect("rule"));
    let li = Whose::Person("li.jia".into());
    let (b, p) = (ScopeOf { whose: &sh(), scope: &branch }, ScopeOf { whose: &li, scope: &person });
    assert!(check_both(b, p, ScopeKind::Categories, "0101").is_ok());
    let err = check_both(b, p, ScopeKind::Categories, "0102").expect_err("person");
    assert_eq!(err.to_string(), "product category 0102 is outside li.jia's categories 0101; ask HQ to widen the scope");
    assert_eq!(check_both(b, p, ScopeKind::Categories, "02").expect_err("branch").whose, sh());
}

#[test]
fn bad_text_is_refused_with_a_reason() {
    for bad in ["customers", "clients=1", "customers=2..30", "customers=30..20", "customers=a**", "customers=1...2", "customers=a b"] {
        assert!(bad.parse::<Scope>().is_err(), "{bad}");
    }
    assert_eq!("customers=1; customers=2".parse::<Scope>(), Err(ScopeParseError::DuplicateKind("customers")));
    let many = format!("customers={}", vec!["1"; SCOPE_PATTERNS_MAX + 1].join(","));
    assert!(matches!(many.parse::<Scope>(), Err(ScopeParseError::TooManyPatterns { .. })));
    let code_over = "9".repeat(SCOPE_CODE_BYTES_MAX + 1);
    assert!(ScopeCode::new(&code_over).is_err() && ScopeCode::new(&code_over[1..]).is_ok());
}

#[test]
fn kinds_have_names_and_labels() {
    for kind in ScopeKind::ALL {
        assert_eq!(ScopeKind::from_name(kind.name()), Some(kind));
    }
    let zh: Vec<_> = ScopeKind::ALL.iter().map(|k| k.zh()).collect();
    assert_eq!(zh, ["仓库", "商品类别", "客户", "供应商", "职员", "现金银行账户", "费用类型", "收入类型"]);
}

#[test]
fn versions_grow() {
    let v1 = VersionedScope { version: ScopeVersion(1), scope: Scope::all() };
    assert_eq!(v1.next(Scope::none()).expect("room").version, ScopeVersion(2));
    assert!(VersionedScope { version: ScopeVersion(u64::MAX), scope: Scope::none() }.next(Scope::none()).is_none());
}

fn code() -> impl Strategy<Value = String> {
    "[0-9A-Z][0-9A-Z_-]{0,6}(\\.[0-9A-Z]{1,4})?"
}

fn pattern() -> impl Strategy<Value = Pattern> {
    prop_oneof![
        Just(Pattern::All),
        code().prop_map(|c| Pattern::Exact(ScopeCode::new(&c).expect("strategy makes codes"))),
        code().prop_map(|c| Pattern::Prefix(ScopeCode::new(&c).expect("strategy makes codes"))),
        ("[0-9]{6}", "[0-9]{6}").prop_map(|(a, b)| {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            Pattern::Range { lo: ScopeCode::new(&lo).expect("digits"), hi: ScopeCode::new(&hi).expect("digits") }
        }),
    ]
}

fn scope() -> impl Strategy<Value = Scope> {
    proptest::collection::vec(proptest::collection::vec(pattern(), 0..5), 8).prop_map(|rules| {
        let mut s = Scope::none();
        for (kind, patterns) in ScopeKind::ALL.into_iter().zip(rules) {
            s = s.with(kind, Rule::new(patterns).expect("under the bound"));
        }
        s
    })
}

proptest! {
    #[test]
    fn print_then_parse_is_identity(s in scope()) {
        let text = s.to_string();
        let back: Scope = text.parse().expect("printed scope parses");
        prop_assert_eq!(&back, &s);
        prop_assert_eq!(back.to_string(), text);
        for kind in ScopeKind::ALL {
            let (k, r) = parse_rule(&print_rule(kind, s.rule(kind))).expect("printed rule parses");
            prop_assert_eq!((k, &r), (kind, s.rule(kind)));
        }
        let bytes = postcard::to_allocvec(&s).expect("encode");
        prop_assert_eq!(postcard::from_bytes::<Scope>(&bytes).expect("decode"), s);
    }

    #[test]
    fn both_is_the_intersection(b in scope(), p in scope(), c in "[0-9]{1,7}") {
        let (wb, wp) = (sh(), Whose::Person("p".into()));
        for kind in ScopeKind::ALL {
            let ok = check_both(ScopeOf { whose: &wb, scope: &b }, ScopeOf { whose: &wp, scope: &p }, kind, &c).is_ok();
            prop_assert_eq!(ok, b.allows(kind, &c) && p.allows(kind, &c));
        }
    }
}
