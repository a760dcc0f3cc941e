//! Checkpoints that are either complete or absent.
//!
//! A checkpoint `output_dir/checkpoint-<step>/` is written into a hidden temporary directory
//! `output_dir/.tmp-checkpoint-<step>-<pid>/`; every file is fsynced, then the directory, then
//! it is renamed into place and the parent directory is fsynced. A crash at any point leaves
//! either the previous checkpoints only or the new one in full. Readers only consider
//! `checkpoint-<n>` directories (never `.tmp-*`), and [`latest`] additionally checks that the
//! files a resume needs are present and parse.
//!
//! Contents (HF Trainer-like, LOCAL-LORA-FACTS §2.5):
//! - `adapter_config.json`, `adapter_model.safetensors`: the PEFT adapter;
//! - `optimizer.safetensors`: AdamW moments (`exp_avg.{i}`, `exp_avg_sq.{i}`);
//! - `trainer_state.json`: step, epoch, data position, RNG state, schedule, optimiser step,
//!   log history.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use super::batching::Example;
use super::lora::LoraConfig;
use super::optim::AdamW;
use super::peft::{self, PeftAdapter};
use super::schedule::Schedule;
use super::trainer::TrainConfig;
use super::{io_err, Result, TrainError};

pub const STATE_NAME: &str = "trainer_state.json";
pub const OPTIMIZER_NAME: &str = "optimizer.safetensors";
const FORMAT_VERSION: u32 = 1;

/// Where the data loader stands: the next micro-batch is batch `next_batch` of `epoch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataPosition {
    pub epoch: u64,
    pub next_batch: u64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LogEntry {
    pub step: u64,
    pub epoch: f64,
    pub loss: f64,
    pub learning_rate: f64,
    pub grad_norm: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_loss: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainerState {
    pub format_version: u32,
    pub global_step: u64,
    pub max_steps: u64,
    /// Fractional epochs completed (HF's `epoch`).
    pub epoch: f64,
    pub data_position: DataPosition,
    /// Micro-batches consumed so far (drives the dropout stream, see `lora::LoraShared`).
    pub micro_step: u64,
    /// State of the trainer's `Rng` (anything drawn outside the per-epoch/dropout streams).
    pub rng_state: u64,
    pub seed: u64,
    pub schedule: Schedule,
    pub optimizer_step: u64,
    pub log_history: Vec<LogEntry>,
    /// What the data order depends on; a resume with different values is refused.
    #[serde(default)]
    pub data: Option<DataFingerprint>,
    /// What the weights depend on (training set content and settings); a resume under a
    /// different fingerprint is refused. Absent in checkpoints written before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<RunFingerprint>,
}

/// What a run computes from: a hash of the tokenized training set and the settings that
/// change the weights. Two runs with equal fingerprints take identical steps, so a resume
/// reproduces the uninterrupted run; anything else must start over.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunFingerprint {
    /// FNV-1a (128-bit) over every training example's input ids and labels, in order.
    pub data: String,
    pub examples: usize,
    /// The settings by name (numbers, strings, lists), so a refusal can say which differs.
    pub settings: std::collections::BTreeMap<String, serde_json::Value>,
}

impl RunFingerprint {
    /// The fingerprint of training `train` under `cfg` with adapters `lora`.
    pub fn of(train: &[Example], cfg: &TrainConfig, lora: &LoraConfig) -> Self {
        let mut hash = Fnv128::default();
        for e in train {
            hash.write(&(e.input_ids.len() as u64).to_le_bytes());
            for id in &e.input_ids {
                hash.write(&id.to_le_bytes());
            }
            for label in &e.labels {
                hash.write(&label.to_le_bytes());
            }
        }
        let mut targets = lora.target_modules.clone();
        targets.sort();
        let settings = serde_json::json!({
            "epochs": cfg.epochs,
            "max_steps": cfg.max_steps,
            "batch_size": cfg.batch_size,
            "gradient_accumulation_steps": cfg.grad_accum,
            "learning_rate": cfg.learning_rate,
            "schedule": format!("{:?}", cfg.schedule),
            "warmup": format!("{:?}", cfg.warmup),
            "max_grad_norm": cfg.max_grad_norm,
            "adam_beta1": cfg.adamw.beta1,
            "adam_beta2": cfg.adamw.beta2,
            "adam_epsilon": cfg.adamw.eps,
            "weight_decay": cfg.adamw.weight_decay,
            "seed": cfg.seed,
            "group_by_length": cfg.group_by_length,
            "pad_token_id": cfg.pad_id,
            "lm_head_chunk": cfg.lm_head_chunk,
            "gradient_checkpointing": cfg.gradient_checkpointing,
            "lora_r": lora.r,
            "lora_alpha": lora.alpha,
            "lora_dropout": lora.dropout,
            "use_rslora": lora.use_rslora,
            "target_modules": targets,
        });
        let settings = match settings {
            serde_json::Value::Object(map) => map.into_iter().collect(),
            _ => unreachable!("a JSON object literal"),
        };
        Self { data: format!("{:032x}", hash.0), examples: train.len(), settings }
    }

    /// Why a checkpoint written under `self` cannot continue under `now`, if it cannot.
    pub fn mismatch(&self, now: &Self) -> Option<String> {
        let mut why = Vec::new();
        if self.data != now.data || self.examples != now.examples {
            why.push(format!(
                "the training data differs ({} examples, content hash {} in the checkpoint; {} examples, {} now)",
                self.examples, self.data, now.examples, now.data
            ));
        }
        let names: std::collections::BTreeSet<&String> =
            self.settings.keys().chain(now.settings.keys()).collect();
        for name in names {
            let (was, is) = (self.settings.get(name), now.settings.get(name));
            if was != is {
                let show = |v: Option<&serde_json::Value>| v.map_or("unset".to_string(), |v| v.to_string());
                why.push(format!("{name} was {} and is now {}", show(was), show(is)));
            }
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// FNV-1a with 128-bit state: stable across platforms and releases (unlike std's hasher),
/// and more than enough to tell two training sets apart.
struct Fnv128(u128);

impl Default for Fnv128 {
    fn default() -> Self {
        Self(0x6c62_272e_07bb_0142_62b8_2175_6295_c58d)
    }
}

impl Fnv128 {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u128::from(b);
            self.0 = self.0.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
        }
    }
}

/// The settings that determine the batches of every step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DataFingerprint {
    pub examples: usize,
    pub batch_size: usize,
    pub grad_accum: usize,
    pub group_by_length: bool,
}

impl TrainerState {
    pub fn new(seed: u64, schedule: Schedule) -> Self {
        Self {
            format_version: FORMAT_VERSION,
            global_step: 0,
            max_steps: schedule.total_steps,
            epoch: 0.0,
            data_position: DataPosition { epoch: 0, next_batch: 0 },
            micro_step: 0,
            rng_state: seed,
            seed,
            schedule,
            optimizer_step: 0,
            log_history: Vec::new(),
            data: None,
            fingerprint: None,
        }
    }
}

/// Test hook: called with each file's path after [`write_file_synced`] wrote it. Lets tests
/// kill the process in the middle of a checkpoint write. Set at most once per process.
pub static AFTER_FILE_WRITTEN: std::sync::OnceLock<fn(&Path)> = std::sync::OnceLock::new();

/// Writes `bytes` to `path` and fsyncs the file.
pub fn write_file_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = std::fs::File::create(path).map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))?;
    if let Some(hook) = AFTER_FILE_WRITTEN.get() {
        hook(path);
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: into a hidden temporary sibling (fsynced), renamed
/// over `path`, then the directory fsynced. A crash leaves the old file (or none), never a
/// partial one; the temporary file is removed by [`remove_stale_temp`].
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let tmp = parent.join(format!(".tmp-{name}-{}", std::process::id()));
    if let Err(e) = write_file_synced(&tmp, bytes) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    sync_dir(parent)
}

fn sync_dir(dir: &Path) -> Result<()> {
    // Directory fsync makes renames and new entries durable (POSIX); Windows has no equivalent.
    #[cfg(unix)]
    std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io_err(dir))?;
    let _ = dir;
    Ok(())
}

/// Creates directory `final_dir` atomically: `fill` writes into a temporary sibling, which is
/// fsynced and renamed into place. An existing `final_dir` is replaced.
pub fn write_dir_atomic(final_dir: &Path, fill: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let parent = final_dir
        .parent()
        .ok_or_else(|| TrainError::Config(format!("{} has no parent", final_dir.display())))?;
    std::fs::create_dir_all(parent).map_err(io_err(parent))?;
    let name = final_dir.file_name().unwrap().to_string_lossy().to_string();
    let tmp = parent.join(format!(".tmp-{name}-{}", std::process::id()));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io_err(&tmp))?;
    }
    std::fs::create_dir(&tmp).map_err(io_err(&tmp))?;
    if let Err(e) = fill(&tmp) {
        let _ = std::fs::remove_dir_all(&tmp); // a failed (not crashed) write leaves nothing
        return Err(e);
    }
    for entry in std::fs::read_dir(&tmp).map_err(io_err(&tmp))? {
        let p = entry.map_err(io_err(&tmp))?.path();
        std::fs::File::open(&p).and_then(|f| f.sync_all()).map_err(io_err(&p))?;
    }
    sync_dir(&tmp)?;
    if final_dir.exists() {
        let old = parent.join(format!(".old-{name}-{}", std::process::id()));
        std::fs::rename(final_dir, &old).map_err(io_err(final_dir))?;
        std::fs::rename(&tmp, final_dir).map_err(io_err(final_dir))?;
        std::fs::remove_dir_all(&old).map_err(io_err(&old))?;
    } else {
        std::fs::rename(&tmp, final_dir).map_err(io_err(final_dir))?;
    }
    sync_dir(parent)
}

/// Everything a resume needs.
pub struct Checkpoint {
    pub dir: PathBuf,
    pub state: TrainerState,
    pub adapter: PeftAdapter,
    pub optimizer: HashMap<String, Tensor>,
}

pub fn checkpoint_dir(output_dir: &Path, step: u64) -> PathBuf {
    output_dir.join(format!("checkpoint-{step}"))
}

/// Saves `checkpoint-<global_step>` atomically and returns its path.
pub fn save(
    output_dir: &Path,
    state: &TrainerState,
    adapter: &PeftAdapter,
    optimizer: &AdamW,
) -> Result<PathBuf> {
    let dir = checkpoint_dir(output_dir, state.global_step);
    let (config, weights) = peft::to_bytes(adapter)?;
    let opt = peft::serialize_tensors(optimizer.state_tensors().into_iter().collect())?;
    let json = serde_json::to_vec_pretty(state).expect("trainer state serialises");
    write_dir_atomic(&dir, |tmp| {
        write_file_synced(&tmp.join(peft::CONFIG_NAME), &config)?;
        write_file_synced(&tmp.join(peft::WEIGHTS_NAME), &weights)?;
        write_file_synced(&tmp.join(OPTIMIZER_NAME), &opt)?;
        write_file_synced(&tmp.join(STATE_NAME), &json)
    })?;
    Ok(dir)
}

/// Loads one checkpoint directory, checking every file a resume needs.
pub fn load(dir: &Path, device: &Device) -> Result<Checkpoint> {
    let state_path = dir.join(STATE_NAME);
    let text = std::fs::read(&state_path).map_err(io_err(&state_path))?;
    let state: TrainerState = serde_json::from_slice(&text)
        .map_err(|source| TrainError::Json { path: state_path.clone(), source })?;
    if state.format_version != FORMAT_VERSION {
        return Err(TrainError::BadFile {
            path: state_path,
            message: format!(
                "checkpoint format {} is not supported (expected {FORMAT_VERSION})",
                state.format_version
            ),
        });
    }
    let adapter = peft::load(dir, device)?;
    let opt_path = dir.join(OPTIMIZER_NAME);
    let optimizer = candle_core::safetensors::load(&opt_path, device)
        .map_err(|e| TrainError::BadFile { path: opt_path.clone(), message: e.to_string() })?;
    Ok(Checkpoint { dir: dir.to_path_buf(), state, adapter, optimizer })
}

/// The complete checkpoint with the highest step in `output_dir`, if any. Temporary
/// directories are never considered; a `checkpoint-<n>` that fails to load is skipped.
pub fn latest(output_dir: &Path, device: &Device) -> Result<Option<Checkpoint>> {
    let Ok(entries) = std::fs::read_dir(output_dir) else { return Ok(None) };
    let mut steps: Vec<u64> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("checkpoint-")?.parse().ok())
        .collect();
    steps.sort_unstable_by(|a, b| b.cmp(a));
    for step in steps {
        if let Ok(c) = load(&checkpoint_dir(output_dir, step), device) {
            return Ok(Some(c));
        }
    }
    Ok(None)
}

/// Removes temporary directories and files left by a crash during a save.
pub fn remove_stale_temp(output_dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(output_dir) else { return Ok(()) };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name().to_string_lossy().to_string();
        if name.starts_with(".tmp-checkpoint-") || name.starts_with(".old-checkpoint-") {
            std::fs::remove_dir_all(e.path()).map_err(io_err(e.path()))?;
        } else if name.starts_with(".tmp-adapter_") {
            // A final adapter file that was being written (`write_file_atomic`).
            std::fs::remove_file(e.path()).map_err(io_err(e.path()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::train::lora::LoraConfig;
    use crate::train::optim::AdamWConfig;
    use crate::train::peft::AdapterWeights;
    use crate::train::schedule::{ScheduleKind, Warmup};
    use crate::train::testutil::assert_close;
    use candle_core::Var;
    use std::collections::BTreeMap;

    const CHILD_ENV: &str = "TUNEKIT_CHECKPOINT_CRASH_DIR";

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("tunekit-ckpt-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn fixture(step: u64) -> Result<(TrainerState, PeftAdapter, AdamW)> {
        let dev = Device::Cpu;
        let p = Var::from_slice(&[1f32, 2., 3., 4.], (2, 2), &dev)?;
        let mut opt = AdamW::new(vec![p], AdamWConfig::default())?;
        for _ in 0..step {
            opt.step(&[Tensor::from_slice(&[0.1f32, -0.2, 0.3, 0.4], (2, 2), &dev)?], 1e-3)?;
        }
        let mut state = TrainerState::new(7, Schedule::new(ScheduleKind::Linear, 1e-4, Warmup::Steps(0), 10));
        state.global_step = step;
        state.optimizer_step = step;
        state.data_position = DataPosition { epoch: 1, next_batch: step };
        let modules = BTreeMap::from([(
            "model.layers.0.self_attn.q_proj".to_string(),
            AdapterWeights {
                a: Tensor::ones((1, 2), candle_core::DType::F32, &dev)?,
                b: Tensor::zeros((2, 1), candle_core::DType::F32, &dev)?,
            },
        )]);
        let adapter = PeftAdapter {
            config: LoraConfig { r: 1, ..LoraConfig::default() },
            base_model_name_or_path: None,
            modules,
            targeting: None,
        };
        Ok((state, adapter, opt))
    }

    #[test]
    fn train_checkpoint_roundtrip_and_latest() -> Result<()> {
        let out = tmp("roundtrip");
        for step in [2, 4] {
            let (state, adapter, opt) = fixture(step)?;
            save(&out, &state, &adapter, &opt)?;
        }
        let (state, _, opt) = fixture(4)?;
        let c = latest(&out, &Device::Cpu)?.expect("a checkpoint");
        assert_eq!(c.state, state);
        assert_eq!(c.dir, checkpoint_dir(&out, 4));
        let p = Var::from_slice(&[0f32; 4], (2, 2), &Device::Cpu)?;
        let mut restored = AdamW::new(vec![p], AdamWConfig::default())?;
        restored.load_state_tensors(c.state.optimizer_step, &c.optimizer)?;
        for (k, t) in opt.state_tensors() {
            assert_close(&restored.state_tensors()[&k], &t, 0.0)?;
        }
        // Saving the same step again replaces it.
        save(&out, &state, &c.adapter, &opt)?;
        assert!(latest(&out, &Device::Cpu)?.is_some());
        std::fs::remove_dir_all(&out).unwrap();
        Ok(())
    }

    /// Child half of the crash test: starts writing checkpoint-9 and dies mid-write. Only its
    /// parent runs it.
    #[test]
    #[ignore = "child half of train_checkpoint_partial_write_is_never_picked_up, which runs it"]
    fn train_checkpoint_crash_child() -> Result<()> {
        let out = std::env::var(CHILD_ENV).expect("run by its parent test, which sets the directory");
        let (state, adapter, opt) = fixture(9)?;
        let (config, _) = peft::to_bytes(&adapter)?;
        let _ = (state, opt);
        write_dir_atomic(&checkpoint_dir(Path::new(&out), 9), |tmp| {
            write_file_synced(&tmp.join(peft::CONFIG_NAME), &config)?;
            std::fs::write(tmp.join(peft::WEIGHTS_NAME), b"half a fi").unwrap();
            std::process::abort(); // an abrupt exit: no destructors, no cleanup
        })?;
        unreachable!()
    }

    const ADAPTER_CHILD_ENV: &str = "TUNEKIT_ADAPTER_CRASH_DIR";

    /// Child half of the final-adapter crash test: dies right after the first file of the
    /// adapter is written. Only its parent runs it.
    #[test]
    #[ignore = "child half of train_final_adapter_is_complete_or_absent_after_a_crash, which runs it"]
    fn train_final_adapter_crash_child() -> Result<()> {
        let out = std::env::var(ADAPTER_CHILD_ENV).expect("run by its parent test, which sets the directory");
        AFTER_FILE_WRITTEN.set(|_| std::process::abort()).unwrap();
        let (_, adapter, _) = fixture(1)?;
        peft::save(Path::new(&out), &adapter)?;
        unreachable!("the hook aborts after the first file")
    }

    /// The final adapter in the output directory is written atomically too: a process killed
    /// while writing it leaves no adapter, never an `adapter_config.json` without its weights
    /// (which would list as a tuned model and fail to load).
    #[test]
    fn train_final_adapter_is_complete_or_absent_after_a_crash() -> Result<()> {
        let out = tmp("adapter-crash");
        std::fs::create_dir_all(&out).unwrap();
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "train::checkpoint::tests::train_final_adapter_crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ADAPTER_CHILD_ENV, &out)
            .status()
            .unwrap();
        assert!(!status.success(), "the child must die mid-write");
        let config = out.join(peft::CONFIG_NAME);
        assert!(
            !config.exists() || peft::load(&out, &Device::Cpu).is_ok(),
            "an adapter_config.json without complete weights was left behind"
        );
        assert!(!out.join(peft::WEIGHTS_NAME).exists(), "a weights file appeared before it was complete");
        remove_stale_temp(&out)?;
        let (_, adapter, _) = fixture(1)?;
        peft::save(&out, &adapter)?;
        assert_eq!(peft::load(&out, &Device::Cpu)?.modules.len(), 1);
        let names: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with(".tmp")), "{names:?}");
        std::fs::remove_dir_all(&out).unwrap();
        Ok(())
    }

    /// A process killed while writing a checkpoint leaves the previous one as the latest; the
    /// partial directory is never picked up, and a corrupt `checkpoint-<n>` is skipped too.
    #[test]
    fn train_checkpoint_partial_write_is_never_picked_up() -> Result<()> {
        let out = tmp("crash");
        let (state, adapter, opt) = fixture(3)?;
        save(&out, &state, &adapter, &opt)?;

        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "train::checkpoint::tests::train_checkpoint_crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &out)
            .status()
            .unwrap();
        assert!(!status.success(), "the child must die mid-write");
        let leftovers: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into())
            .collect();
        assert!(
            leftovers.iter().any(|n| n.starts_with(".tmp-checkpoint-9")),
            "the crash left a temp dir: {leftovers:?}"
        );
        assert!(!checkpoint_dir(&out, 9).exists());
        assert_eq!(latest(&out, &Device::Cpu)?.unwrap().state.global_step, 3);

        // A hand-made incomplete checkpoint-<n> (e.g. copied by a user) is skipped as well.
        std::fs::create_dir_all(checkpoint_dir(&out, 12)).unwrap();
        std::fs::write(checkpoint_dir(&out, 12).join(STATE_NAME), b"{\"global_step\": 12").unwrap();
        assert_eq!(latest(&out, &Device::Cpu)?.unwrap().state.global_step, 3);

        remove_stale_temp(&out)?;
        assert!(!std::fs::read_dir(&out).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with(".tmp")));
        std::fs::remove_dir_all(&out).unwrap();
        Ok(())
    }
}
