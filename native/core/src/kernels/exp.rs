//! Vectorised `exp` for the training kernels: the attention softmax (forward and its
//! recompute in backward) and the SiLU gate, which called libm's scalar `expf` once per
//! element (~4 % of a bf16 training step), and Gemma's GELU-tanh gate, whose candle ops
//! (`gelu`, then `powf`/`tanh` in backward) ran scalar libm on one thread (~26 % of a Gemma
//! bf16 step at 2 threads).
//!
//! [`exp`] is a branch-free f32 polynomial (Cephes' `expf`, about 2 ulp) that the compiler
//! turns into SIMD when it runs over a slice; the slice functions here run it 16 lanes wide,
//! compiled once for the baseline target and once with AVX-512F, picked at runtime (the same
//! dispatch as [`super::ce_row`], whose [`Isa`] they share). Results differ from libm's
//! `expf` by rounding only; the tests check both paths against f64.

pub use super::ce_row::Isa;

/// Values per lane group (one AVX-512 register of f32).
const LANES: usize = 16;

/// `exp(x)` in f32, branch-free: `2ⁿ · p(r)` with `x = n·ln2 + r`, `|r| ≤ ln2 / 2`. Inputs
/// below −87.3 give ~1e-38 rather than 0 (callers that need exact zeros, such as masked
/// attention scores, leave those entries out).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding 1.5·2²³ rounds to an integer in the low mantissa bits.
    const MAGIC: f32 = 12_582_912.0;
    let x = x.clamp(-87.3, 88.7);
    let t = x * LOG2E + MAGIC;
    let n = t - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 5.000_000_1e-1;
    let y = p * r * r + r + 1.0;
    let ni = t.to_bits().wrapping_sub(MAGIC.to_bits()) as i32;
    y * f32::from_bits(((ni + 127) as u32) << 23)
}

/// `tanh(x)` in f32 from [`exp`]: `sign(x) · (1 − e) / (1 + e)` with `e = exp(−2|x|)`
/// (absolute error ≲ 2e-7).
#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    let e = exp(-2.0 * x.abs());
    ((1.0 - e) / (1.0 + e)).copysign(x)
}

/// `x ← exp(x − shift)` over `xs`; returns `Σ exp(x − shift)` (summed in 16 f32 lanes).
pub fn exp_shift_sum(xs: &mut [f32], shift: f32) -> f32 {
    exp_shift_sum_on(Isa::detect(), xs, shift)
}

/// `x ← exp(x − shift)` over `xs`.
pub fn exp_shift(xs: &mut [f32], shift: f32) {
    exp_shift_sum_on(Isa::detect(), xs, shift);
}

/// `out = silu(gate) ⊙ up` with `silu(x) = x·σ(x)`.
pub fn silu_glu(gate: &[f32], up: &[f32], out: &mut [f32]) {
    silu_glu_on(Isa::detect(), gate, up, out)
}

/// The gradients of [`silu_glu`] for the output gradient `g`: `∂gate = (g⊙up)⊙silu'(gate)`,
/// `∂up = g⊙silu(gate)`, with `silu' = σ·(1 − silu) + silu`.
pub fn silu_glu_grad(gate: &[f32], up: &[f32], g: &[f32], d_gate: &mut [f32], d_up: &mut [f32]) {
    silu_glu_grad_on(Isa::detect(), gate, up, g, d_gate, d_up)
}

/// `out = gelu(gate) ⊙ up` with GELU's tanh form (`gelu_pytorch_tanh`, Gemma's MLP):
/// `gelu(x) = x/2 · (1 + tanh(√(2/π)·(x + 0.044715·x³)))`.
pub fn gelu_tanh_glu(gate: &[f32], up: &[f32], out: &mut [f32]) {
    gelu_tanh_glu_on(Isa::detect(), gate, up, out)
}

/// The gradients of [`gelu_tanh_glu`] for the output gradient `g`: `∂gate = (g⊙up)⊙gelu'(gate)`,
/// `∂up = g⊙gelu(gate)`.
pub fn gelu_tanh_glu_grad(gate: &[f32], up: &[f32], g: &[f32], d_gate: &mut [f32], d_up: &mut [f32]) {
    gelu_tanh_glu_grad_on(Isa::detect(), gate, up, g, d_gate, d_up)
}

/// Whether the AVX-512 build of a kernel may run: asked for, and the CPU has it.
fn wants_avx512(isa: Isa) -> bool {
    isa == Isa::Avx512 && Isa::detect() == Isa::Avx512
}

/// [`exp_shift_sum`] on a chosen path (tests run both); the portable one when the CPU lacks
/// the one asked for.
pub fn exp_shift_sum_on(isa: Isa, xs: &mut [f32], shift: f32) -> f32 {
    #[cfg(target_arch = "x86_64")]
    if wants_avx512(isa) {
        // SAFETY: the CPU has AVX-512F (checked by `wants_avx512`).
        return unsafe { avx512::exp_shift_sum(xs, shift) };
    }
    let _ = isa;
    imp::exp_shift_sum(xs, shift)
}

/// [`silu_glu`] on a chosen path.
pub fn silu_glu_on(isa: Isa, gate: &[f32], up: &[f32], out: &mut [f32]) {
    assert!(gate.len() == up.len() && up.len() == out.len(), "silu_glu: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if wants_avx512(isa) {
        // SAFETY: as above.
        return unsafe { avx512::silu_glu(gate, up, out) };
    }
    let _ = isa;
    imp::silu_glu(gate, up, out)
}

/// [`silu_glu_grad`] on a chosen path.
pub fn silu_glu_grad_on(isa: Isa, gate: &[f32], up: &[f32], g: &[f32], d_gate: &mut [f32], d_up: &mut [f32]) {
    let n = gate.len();
    assert!(
        up.len() == n && g.len() == n && d_gate.len() == n && d_up.len() == n,
        "silu_glu_grad: lengths differ"
    );
    #[cfg(target_arch = "x86_64")]
    if wants_avx512(isa) {
        // SAFETY: as above.
        return unsafe { avx512::silu_glu_grad(gate, up, g, d_gate, d_up) };
    }
    let _ = isa;
    imp::silu_glu_grad(gate, up, g, d_gate, d_up)
}

/// [`gelu_tanh_glu`] on a chosen path.
pub fn gelu_tanh_glu_on(isa: Isa, gate: &[f32], up: &[f32], out: &mut [f32]) {
    assert!(gate.len() == up.len() && up.len() == out.len(), "gelu_tanh_glu: lengths differ");
    #[cfg(target_arch = "x86_64")]
    if wants_avx512(isa) {
        // SAFETY: as above.
        return unsafe { avx512::gelu_tanh_glu(gate, up, out) };
    }
    let _ = isa;
    imp::gelu_tanh_glu(gate, up, out)
}

/// [`gelu_tanh_glu_grad`] on a chosen path.
pub fn gelu_tanh_glu_grad_on(
    isa: Isa,
    gate: &[f32],
    up: &[f32],
    g: &[f32],
    d_gate: &mut [f32],
    d_up: &mut [f32],
) {
    let n = gate.len();
    assert!(
        up.len() == n && g.len() == n && d_gate.len() == n && d_up.len() == n,
        "gelu_tanh_glu_grad: lengths differ"
    );
    #[cfg(target_arch = "x86_64")]
    if wants_avx512(isa) {
        // SAFETY: as above.
        return unsafe { avx512::gelu_tanh_glu_grad(gate, up, g, d_gate, d_up) };
    }
    let _ = isa;
    imp::gelu_tanh_glu_grad(gate, up, g, d_gate, d_up)
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    #[target_feature(enable = "avx512f")]
    pub unsafe fn gelu_tanh_glu(gate: &[f32], up: &[f32], out: &mut [f32]) {
        super::imp::gelu_tanh_glu(gate, up, out)
    }
    #[target_feature(enable = "avx512f")]
    pub unsafe fn gelu_tanh_glu_grad(
        gate: &[f32],
        up: &[f32],
        g: &[f32],
        d_gate: &mut [f32],
        d_up: &mut [f32],
    ) {
        super::imp::gelu_tanh_glu_grad(gate, up, g, d_gate, d_up)
    }
    #[target_feature(enable = "avx512f")]
    pub unsafe fn exp_shift_sum(xs: &mut [f32], shift: f32) -> f32 {
        super::imp::exp_shift_sum(xs, shift)
    }
    #[target_feature(enable = "avx512f")]
    pub unsafe fn silu_glu(gate: &[f32], up: &[f32], out: &mut [f32]) {
        super::imp::silu_glu(gate, up, out)
    }
    #[target_feature(enable = "avx512f")]
    pub unsafe fn silu_glu_grad(gate: &[f32], up: &[f32], g: &[f32], d_gate: &mut [f32], d_up: &mut [f32]) {
        super::imp::silu_glu_grad(gate, up, g, d_gate, d_up)
    }
}

/// The bodies, `inline(always)` so each build above gets its own vector width.
mod imp {
    use super::{exp, LANES};

    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    const GELU_CUBIC: f32 = 0.044_715;

    /// `(gelu(x), gelu'(x))`, GELU's tanh form. `1 ± tanh(u)` come straight from
    /// `e = exp(−2|u|)` (`2/(1+e)` and `2e/(1+e)`) rather than from `tanh(u)`, whose f32 value is
    /// exactly ±1 once `|u| > 9`: for a gate around −5, `1 + tanh(u)` would cancel to 0.
    #[inline(always)]
    fn gelu_tanh(x: f32) -> (f32, f32) {
        let x2 = x * x;
        let u = SQRT_2_OVER_PI * x * (1.0 + GELU_CUBIC * x2);
        let e = exp(-2.0 * u.abs());
        let big = 2.0 / (1.0 + e);
        let small = e * big;
        let (one_plus_t, one_minus_t) = if u < 0.0 { (small, big) } else { (big, small) };
        let value = 0.5 * x * one_plus_t;
        let slope = 0.5 * one_plus_t
            + 0.5 * x * one_plus_t * one_minus_t * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_CUBIC * x2);
        (value, slope)
    }

    #[inline(always)]
    pub fn gelu_tanh_glu(gate: &[f32], up: &[f32], out: &mut [f32]) {
        for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
            *o = gelu_tanh(g).0 * u;
        }
    }

    #[inline(always)]
    pub fn gelu_tanh_glu_grad(gate: &[f32], up: &[f32], g: &[f32], d_gate: &mut [f32], d_up: &mut [f32]) {
        for i in 0..gate.len() {
            let (a, da) = gelu_tanh(gate[i]);
            d_gate[i] = g[i] * up[i] * da;
            d_up[i] = g[i] * a;
        }
    }

    #[inline(always)]
    fn sigmoid(x: f32) -> f32 {
        1.0 / (1.0 + exp(-x))
    }

    #[inline(always)]
    pub fn exp_shift_sum(xs: &mut [f32], shift: f32) -> f32 {
        let mut lanes = [0f32; LANES];
        let mut chunks = xs.chunks_exact_mut(LANES);
        for c in &mut chunks {
            for (x, s) in c.iter_mut().zip(lanes.iter_mut()) {
                *x = exp(*x - shift);
                *s += *x;
            }
        }
        let mut sum: f32 = lanes.iter().sum();
        for x in chunks.into_remainder() {
            *x = exp(*x - shift);
            sum += *x;
        }
        sum
    }

    #[inline(always)]
    pub fn silu_glu(gate: &[f32], up: &[f32], out: &mut [f32]) {
        for ((o, &g), &u) in out.iter_mut().zip(gate).zip(up) {
            *o = g * sigmoid(g) * u;
        }
    }

    #[inline(always)]
    pub fn silu_glu_grad(gate: &[f32], up: &[f32], g: &[f32], d_gate: &mut [f32], d_up: &mut [f32]) {
        for i in 0..gate.len() {
            let sig = sigmoid(gate[i]);
            let a = gate[i] * sig;
            d_gate[i] = g[i] * up[i] * (sig * (1.0 - a) + a);
            d_up[i] = g[i] * a;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::test_values;

    const PATHS: [Isa; 2] = [Isa::Portable, Isa::Avx512];

    #[test]
    fn exp_shift_sum_matches_f64_on_both_paths() {
        // Lengths with and without a tail; values over exp's whole useful range.
        for (len, scale) in [(1usize, 1.0f32), (15, 5.0), (64, 20.0), (129, 40.0), (1000, 80.0)] {
            let xs = test_values(len as u64, len, scale);
            let shift = xs.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            // The shift is subtracted in f32 (as the kernel does); exp of that difference in f64.
            let want: Vec<f64> = xs.iter().map(|&x| ((x - shift) as f64).exp()).collect();
            let want_sum: f64 = want.iter().sum();
            for isa in PATHS {
                let mut got = xs.clone();
                let sum = exp_shift_sum_on(isa, &mut got, shift);
                for (g, w) in got.iter().zip(&want) {
                    // Entries below e^-87 are ~1e-38 either way; relative error elsewhere.
                    assert!((*g as f64 - w).abs() <= 3e-7 * w + 1e-37, "{isa:?} len {len}: exp {g} vs {w}");
                }
                assert!(
                    ((sum as f64 - want_sum) / want_sum).abs() < 1e-6,
                    "{isa:?} len {len}: sum {sum} vs {want_sum}"
                );
            }
        }
    }

    /// The kernels' signatures: forward `(isa, gate, up, out)`, backward `(isa, gate, up, g, ∂gate, ∂up)`.
    type GluFwd = fn(Isa, &[f32], &[f32], &mut [f32]);
    type GluBwd = fn(Isa, &[f32], &[f32], &[f32], &mut [f32], &mut [f32]);

    /// Checks a gated activation `act(gate) · up` and its gradient on both CPU paths against
    /// `reference(x) = (act(x), act'(x))` in f64, on gates far past saturation of either sign.
    fn check_glu(seed: u64, fwd: GluFwd, bwd: GluBwd, reference: impl Fn(f64) -> (f64, f64)) {
        let n = 4099;
        let (gate, up, g) =
            (test_values(seed, n, 12.0), test_values(seed + 1, n, 2.0), test_values(seed + 2, n, 1.5));
        for isa in PATHS {
            let mut y = vec![0f32; n];
            let (mut dg, mut du) = (vec![0f32; n], vec![0f32; n]);
            fwd(isa, &gate, &up, &mut y);
            bwd(isa, &gate, &up, &g, &mut dg, &mut du);
            for i in 0..n {
                let (x, u, gg) = (gate[i] as f64, up[i] as f64, g[i] as f64);
                let (a, da) = reference(x);
                let (want_y, want_dg, want_du) = (a * u, gg * u * da, gg * a);
                for (what, got, want) in
                    [("y", y[i], want_y), ("∂gate", dg[i], want_dg), ("∂up", du[i], want_du)]
                {
                    assert!(
                        (got as f64 - want).abs() <= 1e-6 * (1.0 + want.abs()),
                        "{isa:?} {what}[{i}] at gate {x}: {got} vs {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn silu_glu_and_its_gradient_match_f64_on_both_paths() {
        check_glu(1, silu_glu_on, silu_glu_grad_on, |x| {
            let sig = 1.0 / (1.0 + (-x).exp());
            let a = x * sig;
            (a, sig * (1.0 - a) + a)
        });
    }

    #[test]
    fn gelu_tanh_glu_and_its_gradient_match_f64_on_both_paths() {
        let (k, c) = ((2.0 / std::f64::consts::PI).sqrt(), 0.044715);
        check_glu(4, gelu_tanh_glu_on, gelu_tanh_glu_grad_on, |x| {
            let t = (k * (x + c * x * x * x)).tanh();
            (0.5 * x * (1.0 + t), 0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * k * (1.0 + 3.0 * c * x * x))
        });
    }

    #[test]
    fn exp_reports_which_path_the_cpu_runs() {
        eprintln!("exp kernels on this CPU: {:?}", Isa::detect());
    }
}
