import { checkRecordedTraffic, type FakeGeminiService } from "../../src/testing/index.js";

export const KEY = "test-api-key";
export const BASE = "https://generativelanguage.googleapis.com";

export interface CallResult {
  status: number;
  headers: Record<string, string>;
  json: unknown;
  text: string;
  networkError?: string;
}

/** Call the service core directly (no transport). */
export async function call(
  service: FakeGeminiService,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = { "x-goog-api-key": KEY },
): Promise<CallResult> {
  const result = await service.handle({
    method,
    url: `${BASE}${path}`,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  if (result.kind === "network-error") {
    return { status: 0, headers: {}, json: undefined, text: "", networkError: result.reason };
  }
  let json: unknown;
  try {
    json = JSON.parse(result.body);
  } catch {
    json = undefined;
  }
  return { status: result.status, headers: result.headers, json, text: result.body };
}

/** 20 examples, the Gemini API's documented minimum. */
export function examples(count = 20): Array<{ textInput: string; output: string }> {
  return Array.from({ length: count }, (_, index) => ({
    textInput: `${index + 1}`,
    output: `${index + 2}`,
  }));
}

export function createBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    displayName: "Number Generator",
    baseModel: "models/gemini-1.5-flash-001-tuning",
    tuningTask: {
      hyperparameters: { epochCount: 5, batchSize: 4, learningRate: 0.001 },
      trainingData: { examples: { examples: examples() } },
    },
    ...overrides,
  };
}

/**
 * Every successful response in the log (and the request body it answered) validates against its route's
 * discovery schema. Returns how many successful responses were checked.
 */
export function expectAllResponsesValid(service: FakeGeminiService): number {
  // Requests the fake rejected were meant to be invalid; check the accepted ones.
  const accepted = service.requests.filter((entry) => (entry.status ?? 500) < 300);
  const problems = checkRecordedTraffic(accepted, { rejectReadOnlyInRequests: false });
  if (problems.length > 0) throw new Error(JSON.stringify(problems, null, 2));
  return service.requests.filter(
    (entry) => entry.route !== undefined && entry.status !== undefined && entry.status < 300,
  ).length;
}
