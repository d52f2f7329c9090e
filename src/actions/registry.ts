/**
 * The `actions:` section of the config file, validated and built; then the
 * fan-out of each rule transition to the actions its rule names.
 *
 * ```yaml
 * actions:
 *   escalate: {type: webhook, url: "http://127.0.0.1:9000/hook", timeout: 5s, retries: 8,
 *              queue: 1000, breaker: {failures: 5, open: 30s}}
 *   log: {type: log}
 *   bus: {type: nats, subject: ops.alerts}
 * ```
 *
 * Only `type` and (webhook) `url` or (nats) `subject` are required; the
 * rest default to the limits' `action…Default`. Durations are "250ms",
 * "5s", "1m" or whole milliseconds. An error names the path at fault,
 * e.g. `actions.escalate.timeout: …`.
 *
 * @example
 *   const actions = buildActions(parseActions(file.actions), { log });
 *   actions.deliver(["escalate", "log"], alert); // returns at once
 *   actions.status();                            // for GET /api/v1/rules
 *   await actions.close();
 */
import { z } from "zod";
import { parseDurationMs } from "../actors/window-spec.ts";
import { WeirError } from "../runtime/errors.ts";
import { issueText } from "../runtime/issue-text.ts";
import { limits } from "../runtime/limits.ts";
import type { Log } from "../runtime/log.ts";
import { deliveryOutcomes, type Action, type ActionStatus, type DeliveryOutcome, type RuleAlert } from "./action.ts";
import { LogAction } from "./log.ts";
import { NatsAction, type NatsPublish } from "./nats.ts";
import { WebhookAction, type ActionDeps } from "./webhook.ts";

/** A bad `actions:` section: stops start-up like any other config error. */
export class ActionConfigError extends WeirError {
  override name = "ActionConfigError";
  constructor(message: string) {
    super("bad_config", message);
  }
}

const durationMs = (min: number, max: number) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    let ms: number;
    try {
      ms = typeof v === "number" ? v : parseDurationMs(v);
    } catch (e) {
      ctx.addIssue({ code: "custom", message: (e as Error).message });
      return z.NEVER;
    }
    if (!Number.isInteger(ms) || ms < min || ms > max) {
      ctx.addIssue({ code: "custom", message: `must lie within [${min} ms, ${max} ms]` });
      return z.NEVER;
    }
    return ms;
  });

// Not .int(): its failure is an invalid_type that issueText words as "must be a int".
const whole = (min: number, max: number) => z.number().refine(Number.isInteger, "must be a whole number").min(min).max(max);

const webhookSchema = z.strictObject({
  type: z.literal("webhook"),
  url: z.string().refine((u) => /^https?:$/.test(URL.parse(u)?.protocol ?? ""), "must be an http:// or https:// URL"),
  timeout: durationMs(1, limits.actionTimeoutMsMax).default(limits.actionTimeoutMsDefault),
  retries: whole(0, limits.actionRetriesMax).default(limits.actionRetriesDefault),
  queue: whole(1, limits.actionQueueAlertsMax).default(limits.actionQueueAlertsDefault),
  breaker: z.strictObject({
    failures: whole(1, limits.actionBreakerFailuresMax).default(limits.actionBreakerFailuresDefault),
    open: durationMs(0, limits.actionBreakerOpenMsMax).default(limits.actionBreakerOpenMsDefault),
  }).default({ failures: limits.actionBreakerFailuresDefault, open: limits.actionBreakerOpenMsDefault }),
});
const logSchema = z.strictObject({ type: z.literal("log") });
// NATS subjects: dot-separated tokens, no spaces or wildcards (a publish goes to one subject).
const natsSchema = z.strictObject({
  type: z.literal("nats"),
  subject: z.string().max(256).regex(/^[^.\s*>]+(\.[^.\s*>]+)*$/, "must be a NATS subject such as ops.alerts (no spaces or wildcards)"),
});
const schemas = { webhook: webhookSchema, log: logSchema, nats: natsSchema } as const;
// A string first, so that a missing type reads "required" rather than "must be one of".
const typeSchema = z.looseObject({ type: z.string().pipe(z.enum(["webhook", "log", "nats"])) });
const namePattern = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

export type WebhookSpec = z.output<typeof webhookSchema>;
export type ActionSpec = WebhookSpec | z.output<typeof logSchema> | z.output<typeof natsSchema>;

/**
 * The `actions:` map, validated; throws ActionConfigError naming the path.
 * @example parseActions({ hook: { type: "webhook", url: "ftp://x" } }) // throws "actions.hook.url: must be an http:// or https:// URL"
 */
export function parseActions(input: unknown): Record<string, ActionSpec> {
  if (input === undefined || input === null) return {};
  if (typeof input !== "object" || Array.isArray(input)) throw new ActionConfigError("actions: must be a map of action names to actions");
  const entries = Object.entries(input);
  if (entries.length > limits.actionsMax) throw new ActionConfigError(`actions: at most ${limits.actionsMax} actions`);
  const out: Record<string, ActionSpec> = {};
  for (const [name, raw] of entries) {
    if (name.length > limits.actionNameCharsMax || !namePattern.test(name)) {
      throw new ActionConfigError(`actions.${name.slice(0, 64)}: a name must match ${namePattern.source} and be ≤ ${limits.actionNameCharsMax} characters`);
    }
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ActionConfigError(`actions.${name}: must be a map such as {type: log}`);
    const typed = typeSchema.safeParse(raw);
    const parsed = typed.success ? schemas[typed.data.type].safeParse(raw) : typed;
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ActionConfigError(issueText({ ...issue, path: ["actions", name, ...issue.path] }, { actions: input }, "actions"));
    }
    out[name] = parsed.data as ActionSpec;
  }
  return out;
}

export interface ActionsDeps extends ActionDeps {
  /** NATS mode's publisher; without it a `nats` action cannot be built. */
  natsPublish?: NatsPublish;
}

/**
 * Builds every action; throws ActionConfigError when one cannot run here.
 * @example buildActions({ log: { type: "log" } }, { log })
 */
export function buildActions(specs: Record<string, ActionSpec>, deps: ActionsDeps): Actions {
  const built = new Map<string, Action>();
  for (const [name, spec] of Object.entries(specs)) {
    if (spec.type === "webhook") {
      const o = { name, url: spec.url, timeoutMs: spec.timeout, retriesMax: spec.retries, queueMax: spec.queue, breaker: { failuresToOpen: spec.breaker.failures, openMs: spec.breaker.open } };
      built.set(name, new WebhookAction(o, deps));
    } else if (spec.type === "log") {
      built.set(name, new LogAction({ name }, deps));
    } else {
      if (deps.natsPublish === undefined) throw new ActionConfigError(`actions.${name}: type nats needs NATS mode (set WEIR_NATS_URL)`);
      built.set(name, new NatsAction({ name, subject: spec.subject }, { ...deps, publish: deps.natsPublish }));
    }
  }
  return new Actions(built, deps.log);
}

/** The built actions, by name. */
export class Actions {
  constructor(private readonly byName: ReadonlyMap<string, Action>, private readonly log: Log) {}

  names(): string[] {
    return [...this.byName.keys()].sort();
  }

  /** Which of `names` are not configured: for checking a rule before it is taken. */
  missing(names: readonly string[]): string[] {
    return names.filter((n) => !this.byName.has(n));
  }

  /** Hands `alert` to each named action; returns at once. A name not configured (any more) is logged, not thrown. */
  deliver(names: readonly string[], alert: RuleAlert): void {
    for (const name of names) {
      const a = this.byName.get(name);
      if (a === undefined) this.log.warn("rule names an action that is not configured", { action: name, rule: alert.rule });
      else a.deliver(alert);
    }
  }

  /** Each action's deliveries, by name. */
  status(): ActionStatus[] {
    return this.names().map((n) => this.byName.get(n)!.status());
  }

  /**
   * weir_action_deliveries_total{action,outcome} as rows, read when /metrics renders.
   * @example new Gauge("weir_action_deliveries_total", "Alerts handed to actions, by outcome", () => actions.deliveryCounters(), "counter")
   */
  deliveryCounters(): Array<[{ action: string; outcome: DeliveryOutcome }, number]> {
    const rows: Array<[{ action: string; outcome: DeliveryOutcome }, number]> = [];
    for (const s of this.status()) for (const outcome of deliveryOutcomes) rows.push([{ action: s.name, outcome }, s[outcome]]);
    return rows;
  }

  /** Lets every queue drain for up to `timeoutMs`, all at once; what is left then counts as failed. */
  async close(timeoutMs: number = limits.actionCloseTimeoutMs): Promise<void> {
    await Promise.all([...this.byName.values()].map((a) => a.close(timeoutMs)));
  }
}
