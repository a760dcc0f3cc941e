/**
 * Fault injection for the fake service: scripted HTTP errors, dropped connections, slow
 * responses, lost responses and tuning jobs that fail at a given step.
 */
import type { FakeRoute } from "../gemini/routes.js";
import type { RpcStatusName } from "./google-errors.js";

export type { FakeRoute } from "../gemini/routes.js";

/**
 * Which requests a fault applies to. `R` is the route names of the fake it is used with
 * (the Gemini fake's {@link FakeRoute} by default; the Vertex fake has its own).
 */
export interface FaultTarget<R extends string = FakeRoute> {
  /** Route(s) to match; every request (even unknown paths) when absent. */
  route?: R | readonly R[];
  /** HTTP method to match (case-insensitive); any when absent. */
  method?: string;
  /** How many matching requests it affects; `Infinity` for all. @default 1 */
  times?: number;
  /** Let this many matching requests through unharmed first. @default 0 */
  skip?: number;
}

/** What a fault does to a matching request. */
export type FaultAction =
  /** Answer with an HTTP error in Google's shape (the request is not handled). */
  | {
      kind: "error";
      status: number;
      /** Sets `Retry-After` (seconds) and a `google.rpc.RetryInfo` detail. */
      retryAfterSeconds?: number;
      message?: string;
    }
  /** Close the connection before handling (real server: socket destroyed; msw: `HttpResponse.error()`). */
  | { kind: "drop" }
  /** Wait `ms` real milliseconds, then handle normally (or apply the next matching fault). */
  | { kind: "delay"; ms: number }
  /** Handle the request (state changes!), then close the connection instead of answering. */
  | { kind: "lose-response" };

/** A fault: an action plus the requests it targets. */
export type FaultSpec<R extends string = FakeRoute> = FaultTarget<R> & FaultAction;

/** A live fault; read its counters or remove it. */
export interface FaultHandle<R extends string = FakeRoute> {
  readonly spec: FaultSpec<R>;
  /** Requests it has affected so far. */
  readonly hits: number;
  /** Matching requests seen so far (including skipped ones). */
  readonly seen: number;
  /** How many more requests it will affect. */
  readonly remaining: number;
  remove(): void;
}

/** Makes a tuning job end with an error once it reaches `step`. */
export interface TuningFailureSpec {
  /** The step at which the operation fails (1-based; the job never gets past it). */
  atStep: number;
  /**
   * Only the job of this tuned model id (Vertex fake: tuning job id); the next job created
   * when absent.
   */
  tunedModelId?: string;
  /** @default "INTERNAL" */
  status?: RpcStatusName;
  /** @default "Tuning failed at step N." */
  message?: string;
}

class LiveFault<R extends string> implements FaultHandle<R> {
  hits = 0;
  seen = 0;

  constructor(
    readonly spec: FaultSpec<R>,
    private readonly owner: FaultInjector<R>,
  ) {}

  get remaining(): number {
    return Math.max(0, (this.spec.times ?? 1) - this.hits);
  }

  matches(route: R | undefined, method: string): boolean {
    if (this.remaining === 0) return false;
    if (this.spec.method !== undefined && this.spec.method.toUpperCase() !== method) return false;
    const routes = this.spec.route;
    if (routes === undefined) return true;
    if (route === undefined) return false;
    return typeof routes === "string" ? routes === route : routes.includes(route);
  }

  remove(): void {
    this.owner.remove(this);
  }
}

type RetryOptions<R extends string> = Omit<FaultTarget<R>, "times"> & {
  times?: number;
  retryAfterSeconds?: number;
};

/**
 * The fault-injection API of a fake service (`service.faults`). Generic over the fake's route
 * names, so every fake service (Gemini, Vertex AI) shares one injector.
 */
export class FaultInjector<R extends string = FakeRoute> {
  readonly #faults: LiveFault<R>[] = [];
  readonly #tuningFailures: TuningFailureSpec[] = [];
  readonly #createRoute: R;

  /** `createRoute`: the route `loseResponse()` targets by default (the fake's create call). */
  constructor(options: { createRoute?: R } = {}) {
    this.#createRoute = options.createRoute ?? ("createTunedModel" as R);
  }

  /** Add any fault. Faults are checked in the order added. */
  inject(spec: FaultSpec<R>): FaultHandle<R> {
    const fault = new LiveFault<R>(spec, this);
    this.#faults.push(fault);
    return fault;
  }

  /** `times` × 429 RESOURCE_EXHAUSTED, with `Retry-After` when `retryAfterSeconds` is set. */
  rateLimit(options: RetryOptions<R> = {}): FaultHandle<R> {
    return this.inject({ ...options, kind: "error", status: 429 });
  }

  /** `times` × 503 UNAVAILABLE, with `Retry-After` when `retryAfterSeconds` is set. */
  unavailable(options: RetryOptions<R> = {}): FaultHandle<R> {
    return this.inject({ ...options, kind: "error", status: 503 });
  }

  /** `times` × an HTTP error with the given status, in Google's error shape. */
  httpError(status: number, options: RetryOptions<R> & { message?: string } = {}): FaultHandle<R> {
    return this.inject({ ...options, kind: "error", status });
  }

  /** `times` × a dropped connection before the request is handled. */
  dropConnection(options: FaultTarget<R> = {}): FaultHandle<R> {
    return this.inject({ ...options, kind: "drop" });
  }

  /** `times` × a real delay of `ms` before the request is handled. */
  delay(ms: number, options: FaultTarget<R> = {}): FaultHandle<R> {
    return this.inject({ ...options, kind: "delay", ms });
  }

  /**
   * `times` × a request that is handled but whose response never arrives. By default it
   * targets the fake's create route (`createTunedModel`, `createTuningJob`): the job exists,
   * the client sees a network error.
   */
  loseResponse(options: FaultTarget<R> = {}): FaultHandle<R> {
    return this.inject({ route: this.#createRoute, ...options, kind: "lose-response" });
  }

  /** Make a tuning job end with an operation error when it reaches `spec.atStep`. */
  failTuningAtStep(spec: TuningFailureSpec): void {
    if (!Number.isInteger(spec.atStep) || spec.atStep < 1) {
      throw new RangeError(`failTuningAtStep needs an integer atStep ≥ 1, got ${spec.atStep}`);
    }
    this.#tuningFailures.push(spec);
  }

  /** Every request fault added and not removed, with its counters. */
  list(): readonly FaultHandle<R>[] {
    return [...this.#faults];
  }

  /** Remove every fault (request faults and pending tuning failures). */
  clear(): void {
    this.#faults.length = 0;
    this.#tuningFailures.length = 0;
  }

  /** @internal */
  remove(fault: FaultHandle<R>): void {
    const index = this.#faults.indexOf(fault as LiveFault<R>);
    if (index >= 0) this.#faults.splice(index, 1);
  }

  /**
   * @internal The faults that apply to this request, in order: every matching delay, then at
   * most one terminal fault (error, drop or lose-response). Counters are updated.
   */
  take(route: R | undefined, method: string): FaultAction[] {
    const actions: FaultAction[] = [];
    for (const fault of this.#faults) {
      if (!fault.matches(route, method)) continue;
      fault.seen += 1;
      if (fault.seen <= (fault.spec.skip ?? 0)) continue;
      fault.hits += 1;
      actions.push(fault.spec);
      if (fault.spec.kind !== "delay") break;
    }
    return actions;
  }

  /** @internal The failure planned for a new job, removed from the pending list. */
  takeTuningFailure(tunedModelId: string): TuningFailureSpec | undefined {
    let index = this.#tuningFailures.findIndex((spec) => spec.tunedModelId === tunedModelId);
    if (index < 0)
      index = this.#tuningFailures.findIndex((spec) => spec.tunedModelId === undefined);
    if (index < 0) return undefined;
    return this.#tuningFailures.splice(index, 1)[0];
  }
}
