/**
 * Admin routes over named definitions kept by the engine (alert rules,
 * continuous views), role admin: the list, one, a put (created 201,
 * replaced 200) or a delete (204). A bad definition is a 400 naming the
 * part at fault (the book's own error: bad_rule, bad_view); the body is JSON
 * of at most `bodyBytesMax` bytes; 404 for a name there is none of.
 *
 * @example app.route("/", definitionRoutes(deps, { path: "/api/v1/views", what: "view", book: deps.views, list: () => ({ views: deps.views.list() }) }));
 */
import { Hono } from "hono";
import { bodyLimit } from "hono/body-limit";
import { z } from "zod";
import type { AppDeps } from "../app.ts";
import { requireRole } from "../auth.ts";
import { HttpError } from "../errors.ts";
import { parseQuery } from "../params.ts";

/** What the routes reach: the book of definitions. */
export interface DefinitionBook<E> {
  get(name: string): E | undefined;
  put(name: string, def: unknown): Promise<{ created: boolean }>;
  delete(name: string): Promise<boolean>;
}

export interface DefinitionRoutesOptions<E> {
  /** The collection's path: /api/v1/rules. */
  path: string;
  /** One definition's word in messages: rule. */
  what: string;
  book: DefinitionBook<E>;
  /** The answer of GET <path>. */
  list: () => object;
  nameCharsMax: number;
  bodyBytesMax: number;
  /** The definition's schema (its name optional in the body): the OpenAPI document shows it. */
  schema: z.ZodType;
}

const tokenQuery = z.strictObject({ token: z.string().optional() });

export function definitionRoutes<E>(deps: AppDeps, o: DefinitionRoutesOptions<E>): Hono {
  const app = new Hono();
  const admin = requireRole(deps.cfg.tokens, "admin");
  const nameParam = z.string().min(1).max(o.nameCharsMax);
  const nameOf = (raw: string): string => {
    const r = nameParam.safeParse(raw);
    if (!r.success) throw new HttpError(400, `name: at most ${o.nameCharsMax} characters`);
    return r.data;
  };
  const limit = bodyLimit({
    maxSize: o.bodyBytesMax,
    onError: () => {
      throw new HttpError(413, `body: a ${o.what} is at most ${o.bodyBytesMax} bytes`);
    },
  });

  app.get(o.path, admin, (c) => {
    parseQuery(tokenQuery, c.req.query());
    return c.json(o.list());
  });

  app.get(`${o.path}/:name`, admin, (c) => {
    const name = nameOf(c.req.param("name"));
    const entry = o.book.get(name);
    if (entry === undefined) throw new HttpError(404, `name: no ${o.what} "${name}"`);
    return c.json(entry);
  });

  app.put(`${o.path}/:name`, admin, limit, async (c) => {
    const name = nameOf(c.req.param("name"));
    if (!(c.req.header("content-type") ?? "").startsWith("application/json")) throw new HttpError(415, `content-type: a ${o.what} is application/json`);
    let def: unknown;
    try {
      def = JSON.parse(await c.req.text());
    } catch (e) {
      throw new HttpError(400, `body: not JSON: ${(e as Error).message}`);
    }
    const { created } = await o.book.put(name, def);
    return c.json(o.book.get(name), created ? 201 : 200);
  });

  app.delete(`${o.path}/:name`, admin, async (c) => {
    const name = nameOf(c.req.param("name"));
    if (!(await o.book.delete(name))) throw new HttpError(404, `name: no ${o.what} "${name}"`);
    return c.body(null, 204);
  });
  const what = o.what;
  const json = { types: ["application/json"], schema: o.schema };
  deps.doc?.add({ method: "GET", path: o.path, role: "admin", summary: `Every ${what}`, query: tokenQuery, responses: { 200: `the ${what}s` } });
  deps.doc?.add({ method: "GET", path: `${o.path}/:name`, role: "admin", summary: `One ${what}`, query: tokenQuery, responses: { 200: `the ${what}`, 404: `no such ${what}` } });
  deps.doc?.add({
    method: "PUT", path: `${o.path}/:name`, role: "admin", summary: `Makes or replaces a ${what}, kept across restarts`, query: tokenQuery, body: json,
    responses: { 200: "replaced", 201: "made", 400: `a bad ${what}, the fault named by its path`, 413: `over ${o.bodyBytesMax} bytes`, 415: "not JSON" },
  });
  deps.doc?.add({ method: "DELETE", path: `${o.path}/:name`, role: "admin", summary: `Removes a ${what} (one of the config file's stays removed)`, query: tokenQuery, responses: { 204: "removed", 404: `no such ${what}` } });
  return app;
}
