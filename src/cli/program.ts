import { Command, CommanderError, Option } from "commander";
import { fakeServerCommand } from "./commands/fake-server.js";
import { plotCommand } from "./commands/plot.js";
import { validateCommand } from "./commands/validate.js";
import { EXIT } from "./exit-codes.js";
import { type CliIO, type GlobalFlags, Output } from "./output.js";

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
    .exitOverride();

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
    .action(
      action(async (out, data: string, flags: Record<string, string | undefined>) =>
        validateCommand(
          data,
          {
            ...(flags.for ? { for: flags.for } : {}),
            ...(flags.inputColumn ? { input: flags.inputColumn } : {}),
            ...(flags.outputColumn ? { output: flags.outputColumn } : {}),
            ...(flags.instructionColumn ? { instruction: flags.instructionColumn } : {}),
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
    .action(
      action(async (out, source: string, flags: { out?: string; title?: string }) =>
        plotCommand(source, flags, out),
      ),
    );

  program
    .command("fake-server")
    .description("run the fake Gemini tuning service (from tunekit/testing) on a local port")
    .option("-p, --port <port>", "port to listen on (default: a free one)")
    .option("--host <host>", "address to bind", "127.0.0.1")
    .option("--api-key <key>", "API key clients must send", "test-api-key")
    .option("--steps-per-poll <n>", "tuning steps the fake advances per status poll", "5")
    .option("--no-tuning", "behave like today's Gemini API: no base model accepts tuning")
    .action(
      action(
        async (
          out,
          flags: {
            port?: string;
            host?: string;
            apiKey?: string;
            stepsPerPoll?: string;
            tuning?: boolean;
          },
        ) => fakeServerCommand(flags, out, io.interrupt ?? new AbortController().signal),
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
