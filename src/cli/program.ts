import { Command, CommanderError, Option } from "commander";
import { geminiTuner, type RemoteFlags } from "./backends.js";
import { type BuildNativeFlags, buildNativeCommand } from "./commands/build-native.js";
import { type DemoFlags, demoCommand } from "./commands/demo.js";
import { type EvalFlags, evalCommand } from "./commands/eval.js";
import { type ExportFlags, exportCommand } from "./commands/export.js";
import {
  defineFakeServerCommand,
  type FakeServerFlags,
  fakeServerCommand,
} from "./commands/fake-server.js";
import { cancelCommand, statusCommand, watchCommand } from "./commands/jobs.js";
import {
  type DeleteFlags,
  deleteCommand,
  type GenerateFlags,
  generateCommand,
  getCommand,
  type ListFlags,
  listCommand,
} from "./commands/models.js";
import { plotCommand } from "./commands/plot.js";
import { resumeCommand } from "./commands/resume.js";
import { type TuneFlags, tuneCommand } from "./commands/tune.js";
import { validateCommand } from "./commands/validate.js";
import { EXIT } from "./exit-codes.js";
import { type CliIO, type GlobalFlags, Output } from "./output.js";

const BASE_URL_FLAG = "--base-url <url>";
const BASE_URL_HELP =
  "Gemini API base URL, e.g. a `tunekit fake-server` (env TUNEKIT_GEMINI_BASE_URL); the key comes from GEMINI_API_KEY or GOOGLE_API_KEY";
const ENCODING_FLAG = "--encoding <label>";
const ENCODING_HELP =
  "the dataset file's text encoding, e.g. windows-1252 (latin1) or utf-16le (default: utf-8, strict)";
const BASE_WEIGHTS_FLAG = "--base-weights <format>";
const BASE_WEIGHTS_HELP =
  "how the base's weight matrices are held: stored (as in the file; the GGUF default), f32 (the safetensors default), q8_0 / q4_k (a safetensors base quantised on load), or bf16 (bf16 products with f32 accumulation: faster training on AVX512-BF16 CPUs) (local)";
const POLL_FLAG = "--poll-interval <seconds>";
const POLL_HELP =
  "check the job every N seconds (env TUNEKIT_POLL_INTERVAL; default 5 s growing to 30 s)";

const HELP_FOOTER = `
Environment:
  GEMINI_API_KEY, GOOGLE_API_KEY  Gemini API key (sent only in the x-goog-api-key header)
  TUNEKIT_GEMINI_BASE_URL         Gemini API base URL (e.g. a \`tunekit fake-server\`)
  TUNEKIT_POLL_INTERVAL           seconds between status checks of a job
  GOOGLE_CLOUD_PROJECT, GOOGLE_CLOUD_LOCATION
                                  Vertex AI project and region (credentials: Application
                                  Default Credentials, or TUNEKIT_VERTEX_ACCESS_TOKEN)
  TUNEKIT_VERTEX_STAGING_URI      gs://bucket/prefix where tune uploads datasets for Vertex AI
  TUNEKIT_VERTEX_BASE_URL, TUNEKIT_STORAGE_BASE_URL
                                  Vertex AI / Cloud Storage base URLs (e.g. tunekit's fakes)

Exit codes:
  0 success · 1 unexpected failure · 2 bad command line · 3 invalid dataset, option or file
  4 the remote service refused or failed · 5 the tuning job failed or was cancelled
  6 tuning unavailable (model, service or native addon) · 130 interrupted (Ctrl-C)

Ctrl-C while watching a remote job stops watching; the job keeps running (re-attach with
\`tunekit watch <name>\`, stop it with \`tunekit cancel <name>\`).`;

/** Library version, inlined by the build. */
const VERSION = "0.1.0";

/**
 * Runs the `tunekit` command line and resolves with the exit code. Never calls
 * `process.exit`, so it can be driven from tests.
 */
export async function runCli(argv: readonly string[], io: CliIO): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = new Command("tunekit")
    .description(
      "Tune a language model on input → output examples, locally or on Google's tuning services.",
    )
    .version(VERSION)
    .option("--json", "print machine-readable JSON on stdout")
    .option("--verbose", "print stack traces and request details")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .exitOverride()
    .addHelpText("after", HELP_FOOTER);

  const output = (): Output => new Output(io, program.opts<GlobalFlags>());
  // Every action goes through here: errors become one line + hint and an exit code.
  const action =
    <A extends unknown[]>(fn: (out: Output, ...args: A) => Promise<number>) =>
    async (...args: A) => {
      const out = output();
      try {
        exitCode = await fn(out, ...args);
      } catch (error) {
        exitCode = out.error(error);
      }
    };

  program
    .command("validate")
    .description("check a dataset file (.jsonl, .json, .csv) and report every bad row")
    .argument("<data>", "dataset file")
    .addOption(
      new Option("--for <backend>", "limits to apply")
        .choices(["gemini", "local"])
        .default("gemini"),
    )
    .option("--input-column <name>", "field holding the input (explicit column mapping)")
    .option("--output-column <name>", "field holding the output")
    .option("--instruction-column <name>", "field holding an instruction/system preamble")
    .option(ENCODING_FLAG, ENCODING_HELP)
    .action(
      action(async (out, data: string, flags: Record<string, string | undefined>) =>
        validateCommand(
          data,
          {
            ...(flags.for ? { for: flags.for } : {}),
            ...(flags.inputColumn ? { input: flags.inputColumn } : {}),
            ...(flags.outputColumn ? { output: flags.outputColumn } : {}),
            ...(flags.instructionColumn ? { instruction: flags.instructionColumn } : {}),
            ...(flags.encoding ? { encoding: flags.encoding } : {}),
          },
          out,
        ),
      ),
    );

  program
    .command("plot")
    .description("draw the loss curve of a run directory, metrics file or tuned model as SVG")
    .argument(
      "<source>",
      "run directory (metrics.jsonl), metrics/snapshots file, or tuned model name",
    )
    .option("-o, --out <file>", "SVG file to write", "loss.svg")
    .option("--title <text>", "chart title")
    .option(BASE_URL_FLAG, BASE_URL_HELP)
    .action(
      action(async (out, source: string, flags: { out?: string; title?: string } & RemoteFlags) =>
        plotCommand(source, flags, out, async (name) => {
          const model = await geminiTuner(flags, io.env).getModel(name);
          return model.info().snapshots ?? [];
        }),
      ),
    );

  program
    .command("tune")
    .description("tune a model on a dataset and show its progress until it is done")
    .argument("<data>", "dataset file (.jsonl, .json, .csv)")
    .addOption(
      new Option("--backend <backend>", "where to tune")
        .choices(["gemini", "vertex", "local"])
        .default("gemini"),
    )
    .option(
      "-m, --model <model>",
      "base model (gemini default: models/gemini-1.5-flash-001-tuning; local: a directory, GGUF file or hub id)",
    )
    .option("--epochs <n>", "epochs (hyperparameters.epochCount)")
    .option("--batch-size <n>", "examples per step")
    .option("--learning-rate <lr>", "absolute learning rate")
    .option(
      "--lr-multiplier <x>",
      "learning rate relative to the backend's default (instead of --learning-rate)",
    )
    .option("--rank <r>", "LoRA rank (local)")
    .option("--alpha <a>", "LoRA alpha (local)")
    .option("--dropout <p>", "LoRA dropout (local)")
    .option("--max-length <tokens>", "longest example in tokens; longer ones are cut (local)")
    .option("-o, --out <dir>", "where the adapter and checkpoints go (local)")
    .option("--validation <data>", "validation dataset file (local, vertex)")
    .option("--eval-steps <n>", "evaluate the validation set every n steps (local)")
    .option(
      "--early-stopping <patience>",
      "stop after this many evaluations without a lower validation loss (local)",
    )
    .option("--keep-best", "end with the adapter of the lowest validation loss (local)")
    .option(BASE_WEIGHTS_FLAG, BASE_WEIGHTS_HELP)
    .option("--display-name <name>", "display name of the tuned model (at most 40 characters)")
    .option("--description <text>", "description of the tuned model")
    .option(
      "--tuned-model-id <id>",
      "id of the tuned model (gemini; default: from the display name plus a random suffix)",
    )
    .option("--skip-preflight", "do not check first that the base model accepts tuning (gemini)")
    .option("--no-wait", "start the job, print its name and return")
    .option("--input-column <name>", "field holding the input (explicit column mapping)")
    .option("--output-column <name>", "field holding the output")
    .option(ENCODING_FLAG, ENCODING_HELP)
    .option(BASE_URL_FLAG, BASE_URL_HELP)
    .option(POLL_FLAG, POLL_HELP)
    .action(action(async (out, data: string, flags: TuneFlags) => tuneCommand(data, flags, out)));

  program
    .command("resume")
    .description(
      "continue a cancelled, failed or interrupted local run from its last checkpoint (same data and settings)",
    )
    .argument("<run>", "the run's output directory (tune --backend local --out)")
    .action(action(async (out, run: string) => resumeCommand(run, out)));

  program
    .command("status")
    .description("show a tuning job's state, progress and loss curve once")
    .argument("<name>", "tuned model (tunedModels/…) or operation name")
    .option(BASE_URL_FLAG, BASE_URL_HELP)
    .action(
      action(async (out, name: string, flags: RemoteFlags) => statusCommand(name, flags, out)),
    );

  program
    .command("watch")
    .description("follow a tuning job until it ends (Ctrl-C stops watching; the job keeps running)")
    .argument("<name>", "tuned model (tunedModels/…) or operation name")
    .option(BASE_URL_FLAG, BASE_URL_HELP)
    .option(POLL_FLAG, POLL_HELP)
    .action(
      action(async (out, name: string, flags: RemoteFlags) => watchCommand(name, flags, out)),
    );

  program
    .command("cancel")
    .description("cancel a running tuning job and wait until it has stopped")
    .argument("<name>", "tuned model (tunedModels/…) or operation name")
    .option(BASE_URL_FLAG, BASE_URL_HELP)
    .option(POLL_FLAG, POLL_HELP)
    .action(
      action(async (out, name: string, flags: RemoteFlags) => cancelCommand(name, flags, out)),
    );

  program
    .command("list")
    .description("list tuned models (all pages)")
    .addOption(
      new Option("--backend <backend>", "which service")
        .choices(["gemini", "vertex"])
        .default("gemini"),
    )
    .option("--page-size <n>", "models per request (1–1000)")
    .option("--filter <filter>", 'service-side filter, e.g. "owner:me" or "readers:everyone"')
    .option(BASE_URL_FLAG, BASE_URL_HELP)
    .action(action(async (out, flags: ListFlags) => listCommand(flags, out)));

  program
    .command("get")
    .description("show a tuned model: state, base model, hyperparameters, loss curve")
    .argument("<name>", "tuned model (tunedModels/…)")
    .option(BASE_URL_FLAG, BASE_URL_HELP)
    .action(action(async (out, name: string, flags: RemoteFlags) => getCommand(name, flags, out)));

  program
    .command("delete")
    .description("delete a tuned model (asks first unless --yes)")
    .argument("<name>", "tuned model (tunedModels/…)")
    .option("-y, --yes", "delete without asking")
    .option(BASE_URL_FLAG, BASE_URL_HELP)
    .action(
      action(async (out, name: string, flags: DeleteFlags) => deleteCommand(name, flags, out)),
    );

  program
    .command("generate")
    .description("generate a reply with a tuned model (its training template applied)")
    .argument("<model>", "tuned model (tunedModels/…)")
    .argument("<input>", 'input text ("-" reads it from stdin)')
    .option("--temperature <t>", "sampling temperature (default: the tuned model's)")
    .option("--top-p <p>", "nucleus sampling")
    .option("--top-k <k>", "top-k sampling")
    .option("--max-output-tokens <n>", "longest reply in tokens")
    .option("--stream", "print the reply as it is generated")
    .option(BASE_URL_FLAG, BASE_URL_HELP)
    .action(
      action(async (out, model: string, input: string, flags: GenerateFlags) =>
        generateCommand(model, input, flags, out),
      ),
    );

  program
    .command("eval")
    .description(
      "score a model on a dataset: exact/normalised/contained matches, loss and perplexity (local)",
    )
    .argument(
      "<model>",
      "local run or adapter directory, base model (directory, GGUF file, hub id) or tuned model name",
    )
    .argument("<data>", "dataset file (.jsonl, .json, .csv) with the expected outputs")
    .option("--baseline <model>", "also score this model and show both (e.g. the base model)")
    .option("--group-by <field>", "per-slice results by this field of each record (e.g. kind)")
    .option("--report <file.md>", "write a markdown report with the worst examples")
    .option("--worst <n>", "worst examples in the report", "10")
    .option("--max-output-tokens <n>", "longest answer in tokens (default 256)")
    .option("--concurrency <n>", "requests in flight (default 4 remote, 1 local)")
    .option("--no-loss", "skip loss and perplexity (local models)")
    .option(BASE_WEIGHTS_FLAG, "how a local base model's weights are held (see tune --help)")
    .option("--input-column <name>", "field holding the input (explicit column mapping)")
    .option("--output-column <name>", "field holding the output")
    .option(ENCODING_FLAG, ENCODING_HELP)
    .option(BASE_URL_FLAG, BASE_URL_HELP)
    .action(
      action(async (out, model: string, data: string, flags: EvalFlags) =>
        evalCommand(model, data, flags, out),
      ),
    );

  program
    .command("export")
    .description(
      "convert a local run / LoRA adapter directory, or a model directory, to llama.cpp's GGUF",
    )
    .argument(
      "<source>",
      "adapter directory (e.g. a `tune --backend local` run) or Hugging Face model directory / hub id",
    )
    .addOption(new Option("--format <format>", "output format").choices(["gguf"]).default("gguf"))
    .option(
      "-o, --out <file>",
      "file to write (default: <source name>-lora.gguf or <source name>.gguf)",
    )
    .option(
      "--base-model <model>",
      "adapter's base model (default: base_model_name_or_path in adapter_config.json)",
    )
    .addOption(
      new Option(
        "--dtype <dtype>",
        "model export: weight matrices as f32, f16, q8_0 or q4_k (default f32)",
      ).choices(["f32", "f16", "q8_0", "q4_k"]),
    )
    .option(
      "--tokenizer-pre <name>",
      "model export: llama.cpp pre-tokenizer name when it cannot be recognised (e.g. llama-bpe)",
    )
    .action(
      action(async (out, source: string, flags: ExportFlags) => exportCommand(source, flags, out)),
    );

  program
    .command("demo")
    .description("tune the shipped demo model offline; held-out answers before and after")
    .option("-m, --model <model>", "tune this model instead (a directory, GGUF file or hub id)")
    .option("--epochs <n>", "epochs", "3")
    .option("--learning-rate <lr>", "learning rate (default 1e-3 for the demo model, else 1e-4)")
    .option("--batch-size <n>", "examples per step", "8")
    .option("-o, --out <dir>", "where the adapter goes (default runs/demo-<time>)")
    .option("--show <n>", "held-out answers to print before and after", "8")
    .option("--held-out <file>", "score on this held-out JSONL instead of the shipped one")
    .option("--seed <n>", "seed of the tuning run", "7")
    .action(action(async (out, flags: DemoFlags) => demoCommand(flags, out)));

  program
    .command("build-native")
    .description("build the native addon from the shipped Rust sources (needs Rust)")
    .option("-o, --out <file>", "write the addon here (then set TUNEKIT_NATIVE_PATH to it)")
    .action(action(async (out, flags: BuildNativeFlags) => buildNativeCommand(flags, out)));

  defineFakeServerCommand(program.command("fake-server")).action(
    action(async (out, flags: FakeServerFlags) =>
      fakeServerCommand(flags, out, io.interrupt ?? new AbortController().signal),
    ),
  );

  try {
    await program.parseAsync([...argv], { from: "user" });
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end here with code 0; usage mistakes with 2.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    return output().error(error);
  }
  return exitCode;
}
