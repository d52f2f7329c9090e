/**
 * The alert rules' admin routes (API.md "Rules and actions"), role admin:
 * the rules with every instance's state and each action's deliveries, one
 * rule, a rule put (created 201, replaced 200) or deleted. A bad rule is a
 * 400 naming the part at fault (RuleError → bad_rule); the body is JSON of
 * at most limits.ruleBodyBytesMax bytes. The rules themselves are judged in
 * the partitions (engine/rule-book.ts).
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import { limits } from "../../runtime/limits.ts";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";
import { HttpError } from "../errors.ts";
import { parseQuery } from "../params.ts";

const nameParam = z.string().min(1).max(limits.ruleNameCharsMax);
const tokenQuery = z.strictObject({ token: z.string().optional() });

export function rulesRoutes(deps: AppDeps): Hono {
  const app = new Hono();
  const admin = requireRole(deps.cfg.tokens, "admin");
  const limit = bodyLimit({
    maxSize: limits.ruleBodyBytesMax,
    onError: () => {
      throw new HttpError(413, `body: a rule is at most ${limits.ruleBodyBytesMax} bytes`);
    },
  });

  app.get("/api/v1/rules", admin, (c) => {
    parseQuery(tokenQuery, c.req.query());
    return c.json({ rules: deps.rules.list(), actions: deps.rules.actionStatus() });
  });

  app.get("/api/v1/rules/:name", admin, (c) => {
    const name = nameOf(c.req.param("name"));
    const rule = deps.rules.get(name);
    if (rule === undefined) throw new HttpError(404, `name: no rule "${name}"`);
    return c.json(rule);
  });

  app.put("/api/v1/rules/:name", admin, limit, async (c) => {
    const name = nameOf(c.req.param("name"));
    if (!(c.req.header("content-type") ?? "").startsWith("application/json")) throw new HttpError(415, "content-type: a rule is application/json");
    let def: unknown;
    try {
      def = JSON.parse(await c.req.text());
    } catch (e) {
      throw new HttpError(400, `body: not JSON: ${(e as Error).message}`);
    }
    const { created } = await deps.rules.put(name, def);
    return c.json(deps.rules.get(name), created ? 201 : 200);
  });

  app.delete("/api/v1/rules/:name", admin, async (c) => {
    const name = nameOf(c.req.param("name"));
    if (!(await deps.rules.delete(name))) throw new HttpError(404, `name: no rule "${name}"`);
    return c.body(null, 204);
  });
  return app;
}

function nameOf(raw: string): string {
  const r = nameParam.safeParse(raw);
  if (!r.success) throw new HttpError(400, `name: at most ${limits.ruleNameCharsMax} characters`);
  return r.data;
}
