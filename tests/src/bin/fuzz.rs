//! `fuzz`: structured random inputs for every decoder, verifier and the posting engine
//! (see `harness::fuzz`). `cargo run --release -p branchline-tests --bin fuzz -- --inputs
//! 10000000`; a failure prints the command that replays it.
//!
//! Must not: hold a generator of its own; all of them live in `harness::fuzz`.

use clap::Parser;
use harness::fuzz::{self, CountingAlloc};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

#[derive(Parser)]
#[command(name = "fuzz", about = "Feeds structured random inputs to Branchline's decoders, verifiers and posting engine")]
struct Args {
    /// How many inputs.
    #[arg(long, default_value_t = 1_000_000)]
    inputs: u64,
    /// The run's seed; each input derives from (seed, index).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The index of the first input (to replay one).
    #[arg(long, default_value_t = 0)]
    from: u64,
}

fn main() {
    let args = Args::parse();
    // Panics are caught per input and reported once, with the replay command.
    std::panic::set_hook(Box::new(|_| {}));
    let corpus = fuzz::Corpus::new();
    let started = std::time::Instant::now();
    let result = fuzz::run(&corpus, args.seed, args.from, args.inputs, |n| {
        eprintln!("{n} inputs, {:.1} s", started.elapsed().as_secs_f64());
    });
    match result {
        Ok(r) => {
            println!(
                "ok: {} inputs in {:.1} s, {} accepted, largest allocation {} bytes, per target {:?}",
                r.inputs,
                started.elapsed().as_secs_f64(),
                r.accepted,
                r.largest_allocation,
                r.per_target
            );
        }
        Err(f) => {
            eprintln!("FAILED: {f}");
            std::process::exit(1);
        }
    }
}
