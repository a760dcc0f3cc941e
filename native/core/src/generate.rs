//! Autoregressive generation with a KV cache: greedy or seeded temperature / top-k / top-p
//! sampling, EOS and stop-string stopping, text streamed as it becomes final, and a cancel
//! check before every token.

use crate::decoder::KvCache;
use crate::error::{Error, Result};
use crate::model::Model;

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    pub max_new_tokens: usize,
    /// 0 means greedy (argmax); otherwise logits are divided by it before sampling.
    pub temperature: f64,
    /// Keep only the k most likely tokens (0 = no limit).
    pub top_k: usize,
    /// Keep the smallest set of tokens whose probability reaches p (1 = no limit).
    pub top_p: f64,
    pub seed: u64,
    /// Generation stops when the text contains one of these; the stop string and anything
    /// after it is left out of the result.
    pub stop_strings: Vec<String>,
    /// Overrides the model's EOS ids; `Some(vec![])` disables EOS stopping.
    pub eos_token_ids: Option<Vec<u32>>,
}

impl Default for GenerateOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 256,
            temperature: 0.0,
            top_k: 0,
            top_p: 1.0,
            seed: 0,
            stop_strings: Vec::new(),
            eos_token_ids: None,
        }
    }
}

impl GenerateOptions {
    pub fn validate(&self) -> Result<()> {
        if self.max_new_tokens == 0 {
            return Err(Error::option("maxNewTokens", "must be at least 1"));
        }
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(Error::option(
                "temperature",
                format!("must be a finite number >= 0, got {}", self.temperature),
            ));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(Error::option("topP", format!("must be in (0, 1], got {}", self.top_p)));
        }
        if self.stop_strings.iter().any(|s| s.is_empty()) {
            return Err(Error::option("stop", "stop strings must not be empty"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinishReason {
    /// An EOS token was produced (it is not part of the output).
    Eos,
    /// A stop string appeared in the text.
    Stop,
    /// `max_new_tokens` were produced.
    Length,
}

impl FinishReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eos => "eos",
            Self::Stop => "stop",
            Self::Length => "length",
        }
    }
}

/// One step of a streamed generation.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEvent {
    /// The new token; None for the final flush of held-back text.
    pub token_id: Option<u32>,
    /// Text that became final with this token; may be empty while a multi-byte character
    /// or a possible stop-string prefix is still incomplete.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Generation {
    /// Generated ids (without the prompt and without a final EOS).
    pub token_ids: Vec<u32>,
    pub text: String,
    pub finish_reason: FinishReason,
    pub prompt_tokens: usize,
}

/// SplitMix64: tiny, fast, and fully specified, so a seed gives the same tokens on every
/// platform and across dependency upgrades (unlike `rand`'s unspecified StdRng).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Index of the largest logit; the first one on ties, as `torch.argmax` does.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &v) in logits.iter().enumerate() {
        if v > logits[best] {
            best = i;
        }
    }
    best as u32
}

/// Picks the next token from `logits` according to `opts`.
pub fn sample(logits: &[f32], opts: &GenerateOptions, rng: &mut Rng) -> u32 {
    if opts.temperature == 0.0 {
        return argmax(logits);
    }
    let mut candidates: Vec<(u32, f64)> =
        logits.iter().enumerate().map(|(i, &l)| (i as u32, l as f64 / opts.temperature)).collect();
    // Sort by descending logit, ties by id, so the order never depends on the sort algorithm.
    candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    if opts.top_k > 0 {
        candidates.truncate(opts.top_k);
    }
    let max = candidates[0].1;
    let mut total = 0.0;
    for c in &mut candidates {
        c.1 = (c.1 - max).exp();
        total += c.1;
    }
    if opts.top_p < 1.0 {
        let mut cumulative = 0.0;
        let mut keep = candidates.len();
        for (i, c) in candidates.iter().enumerate() {
            cumulative += c.1 / total;
            if cumulative >= opts.top_p {
                keep = i + 1;
                break;
            }
        }
        candidates.truncate(keep);
        total = candidates.iter().map(|c| c.1).sum();
    }
    let mut target = rng.next_f64() * total;
    for &(id, weight) in &candidates {
        target -= weight;
        if target < 0.0 {
            return id;
        }
    }
    candidates.last().map_or(0, |c| c.0)
}

/// Length of the longest suffix of `text` that is a proper prefix of some stop string:
/// that much text must be held back, because the next token may complete the stop string.
fn stop_prefix_len(text: &str, stops: &[String]) -> usize {
    let mut hold = 0;
    for stop in stops {
        for (end, _) in stop.char_indices().skip(1) {
            if end > hold && text.ends_with(&stop[..end]) {
                hold = end;
            }
        }
    }
    hold
}

impl Model {
    /// Generates up to `opts.max_new_tokens` tokens after `prompt_ids`.
    ///
    /// `cancelled` is polled before every forward pass; when it returns true generation stops
    /// with [`Error::Aborted`]. `on_token` receives each token and the text it finalised.
    pub fn generate(
        &self,
        prompt_ids: &[u32],
        opts: &GenerateOptions,
        cancelled: &dyn Fn() -> bool,
        on_token: &mut dyn FnMut(TokenEvent),
    ) -> Result<Generation> {
        opts.validate()?;
        if prompt_ids.is_empty() {
            return Err(Error::option("prompt", "the prompt must contain at least one token"));
        }
        let max_pos = self.config().max_position_embeddings;
        if prompt_ids.len() >= max_pos {
            return Err(Error::option(
                "prompt",
                format!("the prompt has {} tokens; the model's context is {max_pos}", prompt_ids.len()),
            ));
        }
        let eos = opts.eos_token_ids.as_ref().unwrap_or(&self.eos_token_ids);
        let mut rng = Rng::new(opts.seed);
        let mut cache = KvCache::new(self.config());
        let mut generated: Vec<u32> = Vec::new();
        let mut emitted = 0usize; // bytes of `text` already streamed
        let mut input: Vec<u32> = prompt_ids.to_vec();
        let mut finish = FinishReason::Length;
        let mut text = String::new();

        while generated.len() < opts.max_new_tokens {
            if cancelled() {
                return Err(Error::Aborted);
            }
            if cache.len() + input.len() > max_pos {
                break; // context full: finish as "length"
            }
            let logits = self.decoder.step(&input, &mut cache)?.to_vec1::<f32>()?;
            let next = sample(&logits, opts, &mut rng);
            if eos.contains(&next) {
                finish = FinishReason::Eos;
                break;
            }
            generated.push(next);
            input = vec![next];

            let full = self.tokenizer.decode(&generated, true)?;
            if let Some(cut) = opts.stop_strings.iter().filter_map(|s| full.find(s.as_str())).min() {
                let delta = if cut > emitted { full[emitted..cut].to_string() } else { String::new() };
                on_token(TokenEvent { token_id: Some(next), text: delta });
                text = full[..cut].to_string();
                finish = FinishReason::Stop;
                break;
            }
            // Hold back an incomplete UTF-8 sequence (decoded as U+FFFD) and a possible
            // stop-string prefix; both may still change with the next token.
            let mut safe = full.trim_end_matches('\u{FFFD}').len();
            safe -= stop_prefix_len(&full[..safe], &opts.stop_strings);
            let delta = if safe > emitted && full.is_char_boundary(emitted) {
                let d = full[emitted..safe].to_string();
                emitted = safe;
                d
            } else {
                String::new()
            };
            on_token(TokenEvent { token_id: Some(next), text: delta });
            text = full;
        }
        if finish != FinishReason::Stop && emitted < text.len() {
            // Flush what was held back: no more tokens will come.
            if text.is_char_boundary(emitted) {
                on_token(TokenEvent { token_id: None, text: text[emitted..].to_string() });
            }
        }
        Ok(Generation { token_ids: generated, text, finish_reason: finish, prompt_tokens: prompt_ids.len() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_reproducible_and_uniformish() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        let xs: Vec<f64> = (0..10_000).map(|_| a.next_f64()).collect();
        assert!(xs.iter().zip((0..10_000).map(|_| b.next_f64())).all(|(x, y)| *x == y));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "{mean}");
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
    }

    #[test]
    fn greedy_takes_first_max() {
        assert_eq!(argmax(&[0.0, 3.0, 3.0, -1.0]), 1);
    }

    #[test]
    fn top_k_one_is_greedy_and_top_p_limits_support() {
        let logits = [1.0f32, 5.0, 4.9, -2.0];
        let mut rng = Rng::new(1);
        let k1 = GenerateOptions { temperature: 1.0, top_k: 1, ..Default::default() };
        assert!((0..50).all(|_| sample(&logits, &k1, &mut rng) == 1));
        // p(1) ≈ 0.52, p(2) ≈ 0.47: top_p 0.9 keeps exactly those two.
        let p = GenerateOptions { temperature: 1.0, top_p: 0.9, ..Default::default() };
        let seen: std::collections::BTreeSet<u32> = (0..500).map(|_| sample(&logits, &p, &mut rng)).collect();
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), vec![1, 2]);
    }

    #[test]
    fn temperature_sampling_matches_probabilities() {
        let logits = [0.0f32, (3.0f32).ln()]; // p = 0.25, 0.75
        let opts = GenerateOptions { temperature: 1.0, ..Default::default() };
        let mut rng = Rng::new(42);
        let ones = (0..20_000).filter(|_| sample(&logits, &opts, &mut rng) == 1).count();
        let frac = ones as f64 / 20_000.0;
        assert!((frac - 0.75).abs() < 0.015, "{frac}");
    }

    #[test]
    fn holds_back_stop_prefixes() {
        let stops = vec!["\n\nUser:".to_string()];
        assert_eq!(stop_prefix_len("hello\n\nUs", &stops), 4);
        assert_eq!(stop_prefix_len("hello", &stops), 0);
    }

    #[test]
    fn validates_options() {
        let bad = [
            GenerateOptions { max_new_tokens: 0, ..Default::default() },
            GenerateOptions { temperature: -1.0, ..Default::default() },
            GenerateOptions { top_p: 0.0, ..Default::default() },
            GenerateOptions { stop_strings: vec![String::new()], ..Default::default() },
        ];
        for o in bad {
            assert_eq!(o.validate().unwrap_err().code(), "invalid_option");
        }
    }
}
