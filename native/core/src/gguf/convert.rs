//! Undoing GGUF conventions to get Hugging Face tensors back.
//!
//! - Names: `blk.N.attn_q.weight` → `model.layers.N.self_attn.q_proj.weight`, etc.
//! - Llama q/k rows: llama.cpp's converter permutes the rows of `q_proj`/`k_proj` (and their
//!   biases) for the `llama` architecture, turning HF's rotate-half rope layout into
//!   interleaved pairs: reshape `[n_head, 2, head_dim/2, in]`, swap axes 1 and 2. We invert
//!   it. Qwen2, Qwen3 and Gemma 3 use NEOX rope in llama.cpp and are not permuted.
//! - Gemma 3 norms: the converter stores `w + 1` for every RMSNorm weight (Gemma applies
//!   `x * (1 + w)`); we subtract 1 to get HF's parameter back.

/// Maps a GGUF base-model tensor name to the HF name for `arch`, or None if unknown.
pub fn hf_name(arch: &str, gguf_name: &str) -> Option<String> {
    let gemma = arch == "gemma3";
    match gguf_name {
        "token_embd.weight" => return Some("model.embed_tokens.weight".into()),
        "output_norm.weight" => return Some("model.norm.weight".into()),
        "output.weight" => return Some("lm_head.weight".into()),
        _ => {}
    }
    let rest = gguf_name.strip_prefix("blk.")?;
    let (layer, rest) = rest.split_once('.')?;
    if layer.is_empty()
        || !layer.bytes().all(|b| b.is_ascii_digit())
        || (layer.len() > 1 && layer.starts_with('0'))
    {
        return None;
    }
    let (module, suffix) = rest.rsplit_once('.')?;
    if suffix != "weight" && suffix != "bias" {
        return None;
    }
    let hf = match module {
        "attn_norm" => "input_layernorm",
        "attn_q" => "self_attn.q_proj",
        "attn_k" => "self_attn.k_proj",
        "attn_v" => "self_attn.v_proj",
        "attn_output" => "self_attn.o_proj",
        "attn_q_norm" => "self_attn.q_norm",
        "attn_k_norm" => "self_attn.k_norm",
        "ffn_gate" => "mlp.gate_proj",
        "ffn_up" => "mlp.up_proj",
        "ffn_down" => "mlp.down_proj",
        "ffn_norm" if gemma => "pre_feedforward_layernorm",
        "ffn_norm" => "post_attention_layernorm",
        "post_attention_norm" if gemma => "post_attention_layernorm",
        "post_ffw_norm" if gemma => "post_feedforward_layernorm",
        _ => return None,
    };
    Some(format!("model.layers.{layer}.{hf}.{suffix}"))
}

/// The GGUF name for an HF name (inverse of [`hf_name`]).
pub fn gguf_name(arch: &str, hf: &str) -> Option<String> {
    let gemma = arch == "gemma3";
    match hf {
        "model.embed_tokens.weight" => return Some("token_embd.weight".into()),
        "model.norm.weight" => return Some("output_norm.weight".into()),
        "lm_head.weight" => return Some("output.weight".into()),
        _ => {}
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, rest) = rest.split_once('.')?;
    if layer.is_empty() || !layer.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (module, suffix) = rest.rsplit_once('.')?;
    let g = match module {
        "input_layernorm" => "attn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "self_attn.q_norm" => "attn_q_norm",
        "self_attn.k_norm" => "attn_k_norm",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        "post_attention_layernorm" if gemma => "post_attention_norm",
        "post_attention_layernorm" => "ffn_norm",
        "pre_feedforward_layernorm" if gemma => "ffn_norm",
        "post_feedforward_layernorm" if gemma => "post_ffw_norm",
        _ => return None,
    };
    Some(format!("blk.{layer}.{g}.{suffix}"))
}

/// Whether `arch` stores q/k rows permuted (llama.cpp's `LlamaModel.permute`).
pub fn permutes_qk(arch: &str) -> bool {
    arch == "llama"
}

/// Whether `arch` stores norm weights with +1 folded in.
pub fn norms_offset(arch: &str) -> bool {
    arch == "gemma3"
}

fn check_shape(len: usize, rows: usize, cols: usize, n_head: usize) -> Result<usize, String> {
    if rows.checked_mul(cols) != Some(len) {
        return Err(format!("{len} values do not form a {rows}x{cols} matrix"));
    }
    if n_head == 0 || !rows.is_multiple_of(n_head) || !(rows / n_head).is_multiple_of(2) {
        return Err(format!("{rows} rows cannot be split into {n_head} heads of even size"));
    }
    Ok(rows / n_head)
}

/// HF → GGUF: the row permutation llama.cpp's converter applies to llama q/k projections
/// (`[rows, cols]` row-major, `rows = n_head * head_dim`; a bias is `cols = 1`).
/// Output row `h*hd + 2i + j` is input row `h*hd + j*hd/2 + i`.
pub fn permute_qk(data: &[f32], rows: usize, cols: usize, n_head: usize) -> Result<Vec<f32>, String> {
    interleave_rows(data, rows, cols, n_head, false)
}

/// GGUF → HF: the inverse of [`permute_qk`].
pub fn unpermute_qk(data: &[f32], rows: usize, cols: usize, n_head: usize) -> Result<Vec<f32>, String> {
    interleave_rows(data, rows, cols, n_head, true)
}

/// Within each head, maps row `j*hd/2 + i` (HF's halves) to row `2i + j` (llama.cpp's
/// interleaved pairs), or back when `inverse`.
fn interleave_rows(
    data: &[f32],
    rows: usize,
    cols: usize,
    n_head: usize,
    inverse: bool,
) -> Result<Vec<f32>, String> {
    let hd = check_shape(data.len(), rows, cols, n_head)?;
    let half = hd / 2;
    let mut out = vec![0f32; data.len()];
    for h in 0..n_head {
        for i in 0..half {
            for j in 0..2 {
                let interleaved = h * hd + 2 * i + j;
                let halves = h * hd + j * half + i;
                let (dst, src) = if inverse { (halves, interleaved) } else { (interleaved, halves) };
                out[dst * cols..(dst + 1) * cols].copy_from_slice(&data[src * cols..(src + 1) * cols]);
            }
        }
    }
    Ok(out)
}

/// Converts one dequantised GGUF tensor to its HF name and values: renames it, un-permutes
/// llama q/k rows (`n_head` for `attn_q`, `n_head_kv` for `attn_k`), and subtracts the +1
/// from Gemma 3 norm weights. `shape` is PyTorch order (`[out, in]` for matrices).
pub fn to_hf(
    arch: &str,
    gguf_name: &str,
    shape: &[usize],
    data: Vec<f32>,
    n_head: usize,
    n_head_kv: usize,
) -> Result<(String, Vec<f32>), String> {
    let name =
        hf_name(arch, gguf_name).ok_or_else(|| format!("unknown GGUF tensor `{gguf_name}` for `{arch}`"))?;
    let module = gguf_name.rsplit('.').nth(1).unwrap_or("");
    let data = if permutes_qk(arch) && (module == "attn_q" || module == "attn_k") {
        let heads = if module == "attn_q" { n_head } else { n_head_kv };
        let rows = *shape.first().ok_or("scalar q/k tensor")?;
        let cols = shape[1..].iter().product::<usize>();
        unpermute_qk(&data, rows, cols, heads)?
    } else if norms_offset(arch) && module.ends_with("norm") {
        data.into_iter().map(|w| w - 1.0).collect()
    } else {
        data
    };
    Ok((name, data))
}

/// An HF tensor name, its PyTorch-order shape and its values.
pub type HfTensor = (String, Vec<usize>, Vec<f32>);

/// Reads every tensor of a GGUF base, dequantises it to f32 and converts it to its HF name
/// and layout ([`to_hf`]). Returns `(hf_name, pytorch_shape, values)` in file order.
/// `rope_freqs.weight` is read into the configuration instead; any other tensor with no HF
/// counterpart is an error, so nothing is silently dropped.
pub fn hf_tensors(g: &crate::gguf::Gguf) -> crate::Result<Vec<HfTensor>> {
    use crate::error::{Error, LoadErrorKind};
    let h = crate::gguf::Hparams::from_gguf(g)?;
    let mut file = std::fs::File::open(&g.path).map_err(|e| Error::io(&g.path, &e))?;
    let mut out = Vec::with_capacity(g.tensors.len());
    for t in &g.tensors {
        // Rope frequency factors belong to the configuration (see `decoder_config`).
        if t.name == "rope_freqs.weight" {
            continue;
        }
        let bytes = g.read_tensor_bytes(&mut file, &t.name)?;
        let data = g.dequantize(&t.name, &bytes)?;
        let shape = t.shape();
        let (name, data) = to_hf(&h.architecture, &t.name, &shape, data, h.head_count, h.head_count_kv)
            .map_err(|m| Error::load(LoadErrorKind::InvalidConfig, &g.path, m))?;
        out.push((name, shape, data));
    }
    Ok(out)
}
