//! Decides at build time which optional test inputs exist, so tests that need one are
//! compiled as `#[ignore = "…"]` without it and the test runner counts them as ignored
//! (instead of running, printing "skipped" and passing):
//!
//! - `tunekit_gemma_gguf`: `TUNEKIT_GEMMA_GGUF` names an existing file (the Gemma 3 270M
//!   GGUF); its path is compiled in as `TUNEKIT_GEMMA_GGUF_PATH`.
//! - `tunekit_gguf_real`: `TUNEKIT_GGUF_REAL` names an existing GGUF file
//!   (`TUNEKIT_GGUF_REAL_PATH`).
//! - `tunekit_python_peft`: `TUNEKIT_PYTHON` names a Python with torch, transformers and
//!   peft. `scripts/test-native.sh` sets it when `python3` has them; the check itself is not
//!   done here, so building the addon never starts Python.
//!
//! Nothing here affects the library itself.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    for (var, cfg) in [
        ("TUNEKIT_GEMMA_GGUF", "tunekit_gemma_gguf"),
        ("TUNEKIT_GGUF_REAL", "tunekit_gguf_real"),
        ("TUNEKIT_PYTHON", "tunekit_python_peft"),
    ] {
        println!("cargo:rerun-if-env-changed={var}");
        println!("cargo:rustc-check-cfg=cfg({cfg})");
        let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) else { continue };
        // A file must exist; a Python is a command name or a path.
        let usable = var == "TUNEKIT_PYTHON" || Path::new(&value).is_file();
        if usable {
            println!("cargo:rustc-cfg={cfg}");
            println!("cargo:rustc-env={var}_PATH={}", value.to_string_lossy());
        } else {
            println!(
                "cargo:warning={var}={} is not a file; the tests that need it are ignored",
                value.to_string_lossy()
            );
        }
    }
}
