import { startFakeGeminiServer } from "../../testing/gemini/server.js";
import type { Output } from "../output.js";

export interface FakeServerFlags {
  port?: string;
  host?: string;
  apiKey?: string;
  stepsPerPoll?: string;
  tuning?: boolean;
}

/**
 * `tunekit fake-server`: the fake Gemini tuning service on a real port, for clients in any
 * language. Runs until interrupted (Ctrl-C / SIGTERM), then closes cleanly.
 */
export async function fakeServerCommand(
  flags: FakeServerFlags,
  out: Output,
  stop: AbortSignal,
): Promise<number> {
  const server = await startFakeGeminiServer({
    port: flags.port === undefined ? 0 : Number(flags.port),
    host: flags.host ?? "127.0.0.1",
    apiKey: flags.apiKey ?? "test-api-key",
    tuningEnabled: flags.tuning !== false,
    ...(flags.stepsPerPoll === undefined ? {} : { stepsPerPoll: Number(flags.stepsPerPoll) }),
  });
  out.result({ url: server.url, port: server.port, apiKey: flags.apiKey ?? "test-api-key" }, () =>
    [
      `fake Gemini tuning service listening on ${server.url}`,
      `  API key: ${flags.apiKey ?? "test-api-key"} (send it in the x-goog-api-key header)`,
      `  try: GEMINI_API_KEY=${flags.apiKey ?? "test-api-key"} tunekit tune data.jsonl --backend gemini --base-url ${server.url}`,
      "  Ctrl-C stops it",
    ].join("\n"),
  );
  await new Promise<void>((resolve) => {
    if (stop.aborted) resolve();
    stop.addEventListener("abort", () => resolve(), { once: true });
  });
  await server.close();
  out.note("fake server stopped");
  return 0;
}
