//! The fuzz smoke run of CI: every fuzz target (`fuzz/src/lib.rs`, the same bodies the
//! libFuzzer binaries in `fuzz/fuzz_targets/` run) on its corpus, then on seeded mutations of
//! it (bit flips, byte insertions and deletions, splices, truncations), on the stable
//! toolchain, as part of `cargo test`. The long coverage-guided runs are
//! `cargo +nightly fuzz run <target>` (see fuzz/README.md). `FLOE_FUZZ_SMOKE_ITERS` sets the
//! number of mutated inputs per target (default 5,000), `FLOE_FUZZ_SEED` the seed.

use std::path::Path;

#[path = "../fuzz/src/lib.rs"]
mod floe_fuzz;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next() % n as u64) as usize }
    }
}

const INTERESTING: &[&[u8]] = &[
    b"\0",
    b"\n",
    b"\"",
    b"'",
    b":",
    b"- ",
    b"{",
    b"}",
    b"[",
    b"]",
    b"${secrets.",
    b"<",
    b">",
    b";",
    b",",
    b"rel=",
    b"&a",
    b"*a",
    b"!!binary ",
    b"\xff",
    b"\xc3\xa9",
    b"9223372036854775808",
    b"-1",
    b"1e999",
    b"null",
    b"true",
    b"\"2024-01-01T00:00:00Z\"",
    b"version",
    b"1.0.0",
];

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], input: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        match rng.below(6) {
            0 if !input.is_empty() => {
                let i = rng.below(input.len());
                input[i] ^= 1 << rng.below(8);
            }
            1 => {
                let tok = INTERESTING[rng.below(INTERESTING.len())];
                let i = rng.below(input.len() + 1);
                input.splice(i..i, tok.iter().copied());
            }
            2 if !input.is_empty() => {
                let i = rng.below(input.len());
                let j = (i + 1 + rng.below(16)).min(input.len());
                input.drain(i..j);
            }
            3 => {
                let other = &corpus[rng.below(corpus.len())];
                if !other.is_empty() {
                    let a = rng.below(other.len());
                    let b = (a + rng.below(64)).min(other.len());
                    let i = rng.below(input.len() + 1);
                    input.splice(i..i, other[a..b].iter().copied());
                }
            }
            4 if !input.is_empty() => input.truncate(rng.below(input.len())),
            _ => {
                let i = rng.below(input.len() + 1);
                input.insert(i, rng.next() as u8);
            }
        }
    }
}

fn smoke(target: &str, f: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz").join("corpus").join(target);
    let mut corpus: Vec<Vec<u8>> = std::fs::read_dir(&dir).map(|d| d.flatten().filter_map(|e| std::fs::read(e.path()).ok()).collect()).unwrap_or_default();
    corpus.sort();
    assert!(!corpus.is_empty(), "no corpus in {}", dir.display());
    for input in &corpus {
        f(input);
    }
    let iters: usize = std::env::var("FLOE_FUZZ_SMOKE_ITERS").ok().and_then(|v| v.parse().ok()).unwrap_or(5_000);
    let seed: u64 = std::env::var("FLOE_FUZZ_SEED").ok().and_then(|v| v.parse().ok()).unwrap_or(0x5eed_f10e);
    let mut rng = Rng(seed | 1);
    let started = std::time::Instant::now();
    let current = std::env::temp_dir().join(format!("floe-fuzz-{target}-current"));
    for n in 0..iters {
        let mut input = corpus[rng.below(corpus.len())].clone();
        mutate(&mut rng, &corpus, &mut input);
        // An abort (a panic that cannot unwind, e.g. a failed unsafe precondition in a
        // dependency) cannot be caught: the input it ran on is left here.
        let _ = std::fs::write(&current, &input);
        let result = std::panic::catch_unwind(|| f(&input));
        if result.is_err() {
            let path = std::env::temp_dir().join(format!("floe-fuzz-{target}-crash-{n}"));
            let _ = std::fs::write(&path, &input);
            panic!("{target}: input {n} panicked (saved to {}; seed {seed})", path.display());
        }
    }
    let _ = std::fs::remove_file(&current);
    eprintln!("[fuzz smoke] {target}: {} corpus + {iters} mutated inputs in {:?}", corpus.len(), started.elapsed());
}

#[test]
fn config_smoke() {
    smoke("config", floe_fuzz::config);
}

#[test]
fn artifact_smoke() {
    smoke("artifact", floe_fuzz::artifact);
}

#[test]
fn jsonl_smoke() {
    smoke("jsonl", floe_fuzz::jsonl);
}

#[test]
fn link_header_smoke() {
    smoke("link_header", floe_fuzz::link_header);
}
