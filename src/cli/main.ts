#!/usr/bin/env node
import { runCli } from "./program.js";

// The first Ctrl-C asks the running command to stop gracefully (a local tune keeps its
// last checkpoint; a remote watch stops watching). A second one exits at once.
const interrupt = new AbortController();
const onSignal = (signal: NodeJS.Signals) => {
  if (interrupt.signal.aborted) process.exit(130);
  process.stderr.write(
    `\n${signal === "SIGINT" ? "interrupted" : "terminated"}: stopping (press Ctrl-C again to quit at once)\n`,
  );
  interrupt.abort(signal);
};
process.on("SIGINT", onSignal);
// A reader that goes away (`tunekit --help | head`) is not an error: stop writing, and let a
// running command stop as it would on Ctrl-C, keeping what it has finished.
process.stdout.on("error", (error: NodeJS.ErrnoException) => {
  if (error.code !== "EPIPE") throw error;
  if (!interrupt.signal.aborted) interrupt.abort("EPIPE");
});
process.on("SIGTERM", onSignal);

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  stdin: process.stdin,
  interrupt: interrupt.signal,
});
