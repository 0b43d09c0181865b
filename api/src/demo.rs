//! `statesync demo`: the whole path on the example chain, in one process.

use std::time::{Duration, Instant};

use clap::Args;
use rand::{seq::SliceRandom, Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use statesync_circuits::{
    circuit,
    config::ChainConfig,
    engine::{apply_batch, apply_transitions, Mode},
    examples,
    fixed::{Fixed, Fx6},
    state::ChainState,
    transition::{Batch, Kind, MarksQuote, Order, PriceQuote, Transition, BATCH_VERSION},
    witness::fr_hex::to_hex,
};
use statesync_prover::{
    batch::BatchProof,
    epoch::{epoch_public, EpochSpec, EPOCH_K},
    evm::{calldata as evm_calldata, verifier_solidity},
    snark::TranscriptKind,
    Prover,
};

use crate::cli::{Failure, ProverOpts};

/// Options of `statesync demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Number of batches.
    #[arg(long, default_value_t = 2)]
    pub batches: usize,
    /// Transitions per batch (circuit capacity); default: the example chain's.
    #[arg(long)]
    pub capacity: Option<usize>,
    /// Accounts tree depth; default: the example chain's.
    #[arg(long)]
    pub depth: Option<usize>,
    /// Then aggregate all the batches into one epoch proof (EVM transcript),
    /// verify it, and write the chain's Solidity verifier and the epoch's
    /// calldata into DATA_DIR/demo-epoch/. Needs --batches >= 2.
    #[arg(long)]
    pub epoch: bool,
    /// Seed of the batch generator and of the prover's randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Caches and parameters.
    #[command(flatten)]
    pub prover: ProverOpts,
}

fn fx(raw: i128) -> Fx6 {
    Fixed(raw)
}

/// Random transitions that the engine accepts on the evolving state, after a
/// scripted liquidation (account 3 levered long, mark drops, account 4 liquidates).
/// Works on the example chain (any capacity and depth >= 3).
#[derive(Debug)]
pub struct Generator {
    rng: ChaCha20Rng,
    state: ChainState,
    script: Vec<Transition>,
    /// The id of the next order (ids only grow, per account too).
    order_id: u64,
    /// The next oracle timestamp (they only grow).
    clock: u64,
}

/// Quotes of `price` (raw) by each of `oracles` oracles, spread by a
/// hundredth of a percent around it, so that it is their median (unsigned:
/// the oracles sign with their example keys later).
fn spread(oracles: u32, price: i128) -> Vec<PriceQuote> {
    (0..oracles)
        .map(|i| PriceQuote { oracle: i, price: fx(price + (i as i128 - 1) * (price / 10_000)), signature: None })
        .collect()
}

/// Every oracle of `cfg` quoting `price` (raw).
fn quotes(cfg: &ChainConfig, price: i128) -> Vec<PriceQuote> {
    spread(cfg.oracles.keys.len() as u32, price)
}

/// An order for exactly `size` at `price` paying `fee`, live for the next
/// 16 batches from `seq` (signed later, with the whole transition).
fn order(size: i128, price: i128, fee: i128, seq: u64, id: u64) -> Order {
    Order::new(fx(size), fx(price), fx(fee), seq + 16, id)
}

impl Generator {
    /// A generator starting at `cfg`'s genesis.
    pub fn new(cfg: &ChainConfig, seed: u64) -> Self {
        let mark = cfg.markets[0].mark_price.raw();
        let crash = mark / 16 * 15;
        let size = fx(500_000);
        let script = vec![
            Transition::Trade {
                market: 0,
                taker: 3,
                maker: 2,
                size,
                price: fx(mark),
                taker_fee: Fixed(0),
                maker_fee: Fixed(0),
                taker_order: order(size.raw(), mark, 0, 0, 1),
                maker_order: order(-size.raw(), mark, 0, 0, 2),
            },
            Transition::oracle_price(0, 1, quotes(cfg, crash)),
            Transition::Liquidate {
                market: 0,
                liquidated: 3,
                liquidator: 4,
                size: fx(-size.raw()),
                price: fx(crash),
                fee: fx(1_000_000),
                liquidator_order: order(size.raw(), crash, 0, 0, 3),
            },
        ];
        Generator {
            rng: ChaCha20Rng::seed_from_u64(seed),
            state: cfg.genesis_state(),
            script: script.into_iter().rev().collect(),
            order_id: 4,
            clock: 2,
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn candidate(&mut self) -> Transition {
        let time = self.tick();
        let oracles = self.state.markets.oracles.keys.iter().flatten().count() as u32;
        let (seq, id) = (self.state.next_seq, self.order_id);
        self.order_id += 2;
        let r = &mut self.rng;
        let accounts = [1u64, 2, 4];
        let acct = *accounts.choose(r).expect("non-empty");
        let other = *accounts.iter().filter(|a| **a != acct).collect::<Vec<_>>().choose(r).expect("non-empty");
        let mt = &self.state.markets;
        let m = r.gen_range(0..mt.markets.len());
        let mark = mt.markets[m].mark.raw();
        let jiggle = |r: &mut ChaCha20Rng, v: i128| (v + v * r.gen_range(-20..=20) / 1000).max(1);
        match r.gen_range(0..8) {
            0 => Transition::deposit(acct, fx(r.gen_range(10..1_000) * 1_000_000)),
            // signed by the account's example key at its current nonce
            1 => {
                let amount = fx(r.gen_range(1..100) * 1_000_000);
                let nonce = self.state.account(acct).nonce;
                Transition::withdraw(acct, amount, nonce, &examples::secret(acct), self.state.tag)
            }
            2 | 3 => {
                let notional = r.gen_range(100..5_000) as i128 * 1_000_000 * 1_000_000;
                let size = (notional / mark).max(1) * if r.gen_bool(0.5) { 1 } else { -1 };
                let (price, fee) = (jiggle(r, mark), r.gen_range(0..3) * 100_000);
                Transition::Trade {
                    market: m as u32,
                    taker: acct,
                    maker: *other,
                    size: fx(size),
                    price: fx(price),
                    taker_fee: fx(fee),
                    maker_fee: Fixed(0),
                    taker_order: order(size, price, fee, seq, id),
                    maker_order: order(-size, price, 0, seq, id + 1),
                }
            }
            4 => Transition::oracle_price(m as u32, time, spread(oracles, jiggle(r, mark))),
            5 => Transition::FundingTick { market: m as u32, rate: fx(r.gen_range(-5..=5) * 100_000) },
            6 if !mt.series.is_empty() => {
                let j = r.gen_range(0..mt.series.len());
                let s = mt.series[j].clone();
                let premium = jiggle(r, s.premium.raw());
                let quotes = spread(oracles, premium)
                    .into_iter()
                    .map(|q| MarksQuote {
                        oracle: q.oracle,
                        premium: q.price,
                        delta: s.delta,
                        gamma: s.gamma,
                        vega: s.vega,
                        signature: None,
                    })
                    .collect();
                Transition::option_marks(j as u32, time, quotes)
            }
            _ if !mt.series.is_empty() => {
                let j = r.gen_range(0..mt.series.len());
                let premium = jiggle(r, mt.series[j].premium.raw());
                let size = r.gen_range(-3..=3_i128).max(1) * 100_000;
                Transition::OptionTrade {
                    series: j as u32,
                    taker: acct,
                    maker: *other,
                    size: fx(size),
                    premium: fx(premium),
                    taker_fee: Fixed(0),
                    maker_fee: Fixed(0),
                    taker_order: order(size, premium, 0, seq, id),
                    maker_order: order(-size, premium, 0, seq, id + 1),
                }
            }
            _ => Transition::oracle_price(m as u32, time, spread(oracles, jiggle(r, mark))),
        }
    }

    /// The next transition the engine accepts, of one of `kinds` when given,
    /// an oracle update only while `out` has fewer than the shape allows.
    fn next(&mut self, kinds: &[Kind], out: &[Transition]) -> Option<Transition> {
        let oracle = |t: &Transition| t.kind().is_oracle();
        let room = out.iter().filter(|t| oracle(t)).count() < self.state.shape().oracle_updates;
        for _ in 0..10_000 {
            let t = match self.script.pop() {
                Some(t) => t,
                None => self.candidate(),
            };
            if (!kinds.is_empty() && !kinds.contains(&t.kind())) || (oracle(&t) && !room) {
                continue;
            }
            // every account and oracle signs with its example key
            let tag = self.state.tag;
            let t = t
                .signed_by(|id| Some(examples::secret(id)), tag)
                .quotes_signed_by(|i| Some(examples::oracle_secret(i)), tag);
            if let Ok(out) = apply_transitions(&self.state, std::slice::from_ref(&t), Mode::Enforce) {
                let seq = self.state.next_seq;
                self.state = out.state;
                self.state.next_seq = seq;
                return Some(t);
            }
        }
        None
    }

    /// A batch of `capacity` accepted transitions: the script first, then one
    /// of each kind every batch should show, then random ones.
    pub fn batch(&mut self, capacity: usize) -> Vec<Transition> {
        let mut out = vec![];
        while out.len() < capacity && !self.script.is_empty() {
            out.extend(self.next(&[], &out));
        }
        for kind in [Kind::Trade, Kind::OraclePrice, Kind::FundingTick, Kind::OptionMarks] {
            if out.len() < capacity && !out.iter().any(|t| t.kind() == kind) {
                out.extend(self.next(&[kind], &out));
            }
        }
        while out.len() < capacity {
            out.extend(self.next(&[], &out));
        }
        // the next batch is the next seq (orders expire 16 seqs after theirs)
        self.state.next_seq += 1;
        out
    }
}

/// Runs the demo; fails unless every proof verified.
pub fn run(args: &DemoArgs) -> Result<(), Failure> {
    let mut cfg = examples::chain();
    if let Some(c) = args.capacity {
        cfg.shape.capacity = c;
        cfg.shape.oracle_updates = cfg.shape.oracle_updates.min(c);
    }
    if let Some(d) = args.depth {
        cfg.shape.depth = d;
    }
    cfg.validate().map_err(|e| Failure::input(format!("--capacity/--depth: {e}")))?;
    if args.batches == 0 {
        return Err(Failure::input("--batches must be at least 1"));
    }
    if args.epoch && args.batches < 2 {
        return Err(Failure::input("--epoch needs --batches >= 2"));
    }
    // batch proofs that will be aggregated use the Poseidon transcript
    let transcript = if args.epoch { TranscriptKind::Poseidon } else { TranscriptKind::Blake2b };
    let mut proven = vec![];
    let prover = args.prover.prover()?;
    println!("statesync demo: chain {}, shape {}", cfg.chain_id, cfg.shape.id());
    let t = Instant::now();
    let layout = prover.layout(&cfg.shape)?;
    let k = layout.k as u32;
    let advice = layout.num_advice_per_phase[0];
    println!(
        "circuit: k = {k} ({} rows), {advice} advice + {} lookup columns, lookup bits {:?} (layout {:.1?})",
        1u64 << k,
        layout.num_lookup_advice_per_phase[0],
        layout.lookup_bits.unwrap_or(0),
        t.elapsed()
    );
    let r = circuit::report(&cfg.shape)?;
    println!(
        "cells: {} advice, {} lookup; per transition slot {} advice cells ({}) and {} lookup cells",
        r.advice_cells,
        r.lookup_cells,
        r.advice_cells_per_slot,
        r.slot_parts.iter().map(|(p, c)| format!("{p} {c}")).collect::<Vec<_>>().join(", "),
        r.lookup_cells_per_slot
    );
    if prover.srs().is_insecure() {
        println!("WARNING: INSECURE development SRS (public seed) — for demos and tests only");
    }
    let t = Instant::now();
    prover.params(k)?;
    println!("params ready in {:.1?}", t.elapsed());
    let t = Instant::now();
    let keys = prover.batch_keys(&cfg.shape)?.keys;
    println!("proving and verifying keys in {:.1?}; vk sha256 {}", t.elapsed(), keys.vk_hash);

    let mut gen = Generator::new(&cfg, args.seed);
    let mut state = cfg.genesis_state();
    let mut prover_rng = ChaCha20Rng::seed_from_u64(args.seed);
    let mut all_ok = true;
    let mut total = Duration::ZERO;
    for seq in 0..args.batches as u64 {
        let transitions = gen.batch(cfg.shape.capacity);
        let batch = Batch { version: BATCH_VERSION, chain_id: cfg.chain_id.clone(), seq, transitions };
        let applied = apply_batch(&state, &cfg.chain_id, &batch)
            .map_err(|e| Failure::failed(format!("generated batch rejected: {e}")))?;
        let mut kinds: Vec<&str> = batch.transitions.iter().map(|t| t.kind().name()).collect();
        kinds.sort_unstable();
        kinds.dedup();
        let w = &applied.witness;
        let t = Instant::now();
        let (proof, _) = prover.prove_batch(w, transcript, &mut prover_rng)?;
        let prove_time = t.elapsed();
        total += prove_time;
        let t = Instant::now();
        let ok = prover.verify_batch(&cfg.shape, &proof)?;
        all_ok &= ok;
        println!(
            "batch {seq}: {} transitions ({} liquidations; {}), root {} -> {}, proof {} bytes, proved in {:.1?}, verified in {:.1?}: {}",
            w.public.transitions,
            w.public.liquidations,
            kinds.join(", "),
            to_hex(&w.public.old_root),
            to_hex(&w.public.new_root),
            proof.proof.len(),
            prove_time,
            t.elapsed(),
            if ok { "VALID" } else { "INVALID" }
        );
        proven.push(proof);
        state = applied.state;
    }
    println!(
        "{} batches, mean proving time {:.1?} per batch ({:.2?} per transition slot)",
        args.batches,
        total / args.batches as u32,
        total / (args.batches * cfg.shape.capacity) as u32
    );
    if !all_ok {
        return Err(Failure::failed("a proof did not verify"));
    }
    println!("all proofs verified");
    if args.epoch {
        epoch(args, &prover, &cfg, &proven, &mut prover_rng)?;
    }
    Ok(())
}

/// Aggregates `proven` (all the demo's batches) into one epoch proof.
fn epoch(
    args: &DemoArgs,
    prover: &Prover,
    cfg: &ChainConfig,
    proven: &[BatchProof],
    rng: &mut ChaCha20Rng,
) -> Result<(), Failure> {
    let spec = EpochSpec::epoch(1, proven.len(), EPOCH_K);
    let tag = cfg.tag();
    let t = Instant::now();
    prover.params(EPOCH_K)?;
    println!("epoch: params k = {EPOCH_K} ready in {:.1?}", t.elapsed());
    let t = Instant::now();
    let ekeys = prover.epoch_keys(cfg, &spec)?.keys;
    println!(
        "epoch: keys for {} batches in {:.1?} ({} advice + {} lookup columns); vk sha256 {}",
        spec.n,
        t.elapsed(),
        ekeys.config.num_advice,
        ekeys.config.num_lookup_advice,
        ekeys.vk_hash
    );
    let publics: Vec<_> = proven.iter().map(|p| p.public).collect();
    let t = Instant::now();
    let proof = prover.prove_epoch(cfg, &spec, proven, TranscriptKind::Evm, rng)?;
    let prove_time = t.elapsed();
    let t = Instant::now();
    let ok = prover.verify_epoch(cfg, &spec, &proof)?;
    let public = proof.public();
    println!(
        "epoch: batches 0..={} root {} -> {}, {} transitions, {} liquidations, proof {} bytes, proved in {:.1?}, verified (with the accumulator's pairing) in {:.1?}: {}",
        spec.n - 1,
        to_hex(&public.public.old_root),
        to_hex(&public.public.new_root),
        public.public.transitions,
        public.public.liquidations,
        proof.proof.len(),
        prove_time,
        t.elapsed(),
        if ok { "VALID" } else { "INVALID" }
    );
    if !ok || public != epoch_public(&publics, &vec![1; publics.len()], tag) {
        return Err(Failure::failed("the epoch proof did not verify"));
    }
    let dir = args.prover.data_dir.join("demo-epoch");
    std::fs::create_dir_all(&dir).map_err(|e| Failure::failed(format!("creating {}: {e}", dir.display())))?;
    let sol = dir.join("Verifier.sol");
    let calldata = dir.join("calldata.hex");
    let verifier = prover.epoch_verifier(cfg, &spec)?;
    std::fs::write(&sol, verifier_solidity(&verifier.params, &verifier.vk))
        .and_then(|_| std::fs::write(&calldata, hex::encode(evm_calldata(&proof.instances, &proof.proof))))
        .map_err(|e| Failure::failed(format!("writing {}: {e}", dir.display())))?;
    println!("epoch: Solidity verifier {} and calldata {} written", sol.display(), calldata.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Orders expire 16 seqs after the batch that carries them: a long run
    /// of generated batches (the service benchmark's) must keep applying.
    #[test]
    fn generated_batches_keep_applying_past_the_order_expiry() {
        let cfg = examples::chain_with(4, 8);
        let mut gen = Generator::new(&cfg, 7);
        let mut state = cfg.genesis_state();
        for seq in 0..40 {
            let batch =
                Batch { version: BATCH_VERSION, chain_id: cfg.chain_id.clone(), seq, transitions: gen.batch(4) };
            state = apply_batch(&state, &cfg.chain_id, &batch).unwrap_or_else(|e| panic!("seq {seq}: {e:?}")).state;
        }
    }
}
