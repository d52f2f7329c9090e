/**
 * The alert rules' admin routes (API.md "Rules and actions"), role admin:
 * the rules with every instance's state and each action's deliveries, one
 * rule, a rule put or deleted (definitions.ts). The rules themselves are
 * judged in the partitions (engine/rule-book.ts).
 */
import type { Hono } from "hono";
import { limits } from "../../runtime/limits.ts";
import type { AppDeps } from "../app.ts";
import { definitionRoutes } from "./definitions.ts";
import { ruleSchema } from "../../actors/rules/rule.ts";

export function rulesRoutes(deps: AppDeps): Hono {
  return definitionRoutes(deps, {
    path: "/api/v1/rules", what: "rule", book: deps.rules, list: () => ({ rules: deps.rules.list(), actions: deps.rules.actionStatus() }),
    nameCharsMax: limits.ruleNameCharsMax, bodyBytesMax: limits.ruleBodyBytesMax, schema: ruleSchema.partial({ name: true }),
  });
}
