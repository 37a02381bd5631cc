use protocol::batch::SignedBatch;
use protocol::codes::BranchCode;
use protocol::journal::ChainHead;
use protocol::testkit::{sample_doc, test_key};
#[test]
fn speed() {
    let key = test_key(1);
    let sh = BranchCode::new("SH").unwrap();
    let mut head = ChainHead::EMPTY;
    let entries: Vec<Vec<u8>> = (1..=3)
        .map(|i| {
            let (_, b, n) = head.append(sample_doc(i));
            head = n;
            b
        })
        .collect();
    let t = std::time::Instant::now();
    let mut b = None;
    for _ in 0..100 {
        b = Some(SignedBatch::sign(&sh, entries.clone(), &key));
    }
    eprintln!("100 sign: {:?}", t.elapsed());
    let b = b.unwrap();
    let vk = key.verifying_key();
    let t = std::time::Instant::now();
    for _ in 0..100 {
        assert!(b.signature_ok(&vk));
    }
    eprintln!("100 verify: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    for _ in 0..100 {
        let _ = key.verifying_key();
    }
    eprintln!("100 vk: {:?}", t.elapsed());
}
