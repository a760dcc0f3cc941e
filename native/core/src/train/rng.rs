//! A small seeded random generator (SplitMix64) whose whole state is one `u64`, so a
//! checkpoint can store it and a resumed run draws exactly the same numbers.
//!
//! It is used for LoRA initialisation, dropout masks and data shuffling. It does not try to
//! reproduce torch's generator: parity tests against PEFT load PEFT's initial weights and run
//! with dropout 0.

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rng {
    state: u64,
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    /// A generator for a named purpose (e.g. "shuffle", epoch 3), independent of the others.
    pub fn derive(seed: u64, stream: &str, index: u64) -> Self {
        let mut h = 0xcbf2_9ce4_8422_2325u64; // FNV-1a over the stream name
        for b in stream.bytes() {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        let mut r = Self::new(seed ^ h ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next_u64();
        r
    }

    pub fn state(&self) -> u64 {
        self.state
    }

    pub fn from_state(state: u64) -> Self {
        Self { state }
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1) with 53 random bits.
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform integer in [0, n).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() as u128 * n as u128) >> 64) as usize
    }

    /// Uniform in [lo, hi).
    pub fn uniform_vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f32> {
        (0..n).map(|_| (lo + (hi - lo) * self.next_f64()) as f32).collect()
    }

    /// Fisher–Yates.
    pub fn shuffle<T>(&mut self, xs: &mut [T]) {
        for i in (1..xs.len()).rev() {
            let j = self.below(i + 1);
            xs.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn train_rng_is_reproducible_from_its_state() {
        let mut a = Rng::new(42);
        a.next_u64();
        let saved = a.state();
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let mut b = Rng::from_state(saved);
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(Rng::derive(1, "shuffle", 0), Rng::derive(1, "shuffle", 1));
        assert_ne!(Rng::derive(1, "shuffle", 0), Rng::derive(1, "dropout", 0));
    }

    #[test]
    fn train_rng_uniform_and_shuffle_are_sane() {
        let mut r = Rng::new(7);
        let v = r.uniform_vec(10_000, -0.5, 0.5);
        assert!(v.iter().all(|x| (-0.5..0.5).contains(x)));
        let mean: f32 = v.iter().sum::<f32>() / v.len() as f32;
        assert!(mean.abs() < 0.02, "mean {mean}");
        let mut idx: Vec<usize> = (0..100).collect();
        r.shuffle(&mut idx);
        assert_ne!(idx, (0..100).collect::<Vec<_>>());
        idx.sort();
        assert_eq!(idx, (0..100).collect::<Vec<_>>());
    }
}
