//! The short fuzz run of CI (issue 10): a few tens of thousands of structured random
//! inputs over every format and the posting engine, no panic, no huge allocation. The
//! long run is `cargo run --release -p branchline-tests --bin fuzz -- --inputs 10000000`
//! (BENCHMARKS.md).

use harness::fuzz::{self, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[test]
fn fuzz_every_format_and_the_posting_engine_briefly() {
    let corpus = fuzz::Corpus::new();
    let report = fuzz::run(&corpus, 20_261_204, 0, 20_000, |_| {}).unwrap_or_else(|f| panic!("{f}"));
    assert_eq!(report.inputs, 20_000);
    assert_eq!(report.per_target.len(), fuzz::Target::ALL.len(), "every target got inputs: {:?}", report.per_target);
    assert!(report.accepted > 0, "some inputs must get through the decoders");
    assert!(report.largest_allocation <= fuzz::ALLOCATION_BYTES_MAX);
}
