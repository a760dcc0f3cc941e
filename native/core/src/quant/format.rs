//! How a base's weight matrices are held in memory (`baseWeights`).

use crate::gguf::reader::GgmlType;

/// How to hold a base model's weight matrices in memory (`baseWeights` in the TypeScript API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BaseFormat {
    /// As the file stores them: GGUF blocks stay quantised, bf16/f16 safetensors stay 16-bit,
    /// f32 stays f32.
    #[default]
    Stored,
    /// Everything dequantised to f32 (exact parity with transformers on f32 checkpoints).
    F32,
    /// Quantise each matrix of a safetensors base to Q8_0 while loading.
    Q8_0,
    /// Quantise each matrix of a safetensors base to Q4_K while loading (Q8_0 for rows that are
    /// not a multiple of 256 values, bf16 for rows not a multiple of 32).
    Q4K,
    /// Round every projection matrix and the LM head to bf16 and pack them for the bf16 GEMM
    /// (AVX512-BF16 where the CPU has it): products take bf16 inputs and accumulate in f32;
    /// LoRA weights, the embedding lookup, norms and activations stay f32.
    Bf16,
}

impl BaseFormat {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "stored" => Self::Stored,
            "f32" => Self::F32,
            "q8_0" => Self::Q8_0,
            "q4_k" => Self::Q4K,
            "bf16" => Self::Bf16,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stored => "stored",
            Self::F32 => "f32",
            Self::Q8_0 => "q8_0",
            Self::Q4K => "q4_k",
            Self::Bf16 => "bf16",
        }
    }

    /// The ggml type a `[rows, cols]` f32 matrix is quantised to on load, if any.
    pub fn quantize_to(self, cols: usize) -> Option<GgmlType> {
        let target = match self {
            Self::Stored | Self::F32 | Self::Bf16 => return None,
            Self::Q8_0 => GgmlType::Q8_0,
            Self::Q4K => GgmlType::Q4_K,
        };
        [target, GgmlType::Q8_0, GgmlType::BF16]
            .into_iter()
            .find(|t| cols.is_multiple_of(t.block_layout().0 as usize))
    }
}
