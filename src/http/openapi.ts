/**
 * The OpenAPI 3.1 document (GET /api/v1/openapi.json), made from the zod
 * schemas the routes validate with: each route module records, beside the
 * route, its method, path, role, summary, statuses and the very schema
 * objects it parses its query and body with (`doc.add`), and this module
 * turns them into the document with zod's own JSON Schema output. One
 * source of truth: a parameter added to a route's schema is in the
 * document; a route registered without a record fails
 * test/openapi.test.ts.
 *
 * @example
 *   const doc = new ApiDoc();
 *   doc.add({ method: "GET", path: "/api/v1/series", role: "read", summary: "Series", query: seriesQuery, responses: { 200: "…", 400: "…" } });
 *   openApiDocument(doc, "0.1.0") // { openapi: "3.1.0", paths: { "/api/v1/series": { get: … } }, … }
 */
import { z } from "zod";

export type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
/** Who may call: no token, a role (admin implies every role), or any known token. */
export type Need = "none" | "any" | "ingest" | "read" | "admin";

export interface Operation {
  method: Method;
  /** Hono's form: /api/v1/rules/:name. */
  path: string;
  role: Need;
  summary: string;
  /** The schema the route parses its query string with. */
  query?: z.ZodType;
  /** The body's content types, and the schema it is validated with where there is one. */
  body?: { types: readonly string[]; schema?: z.ZodType; description?: string };
  /** Status → what it means. 4xx and 5xx carry the error body {"error": …}. */
  responses: Partial<Record<number, string>>;
  /** A WebSocket upgrade (GET), documented with its 101. */
  websocket?: true;
}

export class ApiDoc {
  readonly ops: Operation[] = [];

  /** Records an operation (route modules call it beside app.get/post/…). */
  add(op: Operation): void {
    this.ops.push(op);
  }
}

const errorSchema = { type: "object", required: ["error"], properties: { error: { type: "string", description: "what is wrong, naming the field or limit" } } };

/** The OpenAPI 3.1 document of every recorded operation. */
export function openApiDocument(doc: ApiDoc, version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of doc.ops) {
    const path = op.path.replace(/:([A-Za-z_]\w*)/g, "{$1}");
    (paths[path] ??= {})[op.method.toLowerCase()] = operationOf(op);
  }
  return {
    openapi: "3.1.0",
    info: { title: "weir", version, description: "Real-time stream analytics: ingest, windows, anomalies, trends, rules, views, the lake. See README.md." },
    servers: [{ url: "/" }],
    components: {
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "WEIR_TOKENS; WebSockets and SSE may pass ?token=" } },
      schemas: { Error: errorSchema },
    },
    paths,
  };
}

function operationOf(op: Operation): Record<string, unknown> {
  const params = [...pathParams(op.path), ...queryParams(op.query)];
  const responses: Record<string, unknown> = {};
  if (op.websocket) responses["101"] = { description: "switching to the WebSocket protocol" };
  for (const [status, description] of Object.entries(op.responses)) {
    responses[status] = Number(status) >= 400
      ? { description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } }
      : { description };
  }
  if (op.role !== "none") {
    responses["401"] ??= { description: "token missing or unknown", content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } };
    if (op.role !== "any") responses["403"] ??= { description: `the token lacks role ${op.role}`, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } };
  }
  return {
    summary: op.summary,
    operationId: `${op.method.toLowerCase()}${op.path.replace(/[^A-Za-z0-9]+(.)?/g, (_, c: string | undefined) => (c ?? "").toUpperCase())}`,
    ...(op.role === "none" ? { security: [] } : { security: [{ bearer: [] }], "x-weir-role": op.role }),
    ...(params.length > 0 ? { parameters: params } : {}),
    ...(op.body === undefined ? {} : { requestBody: bodyOf(op.body) }),
    responses,
  };
}

function pathParams(path: string): unknown[] {
  return [...path.matchAll(/:([A-Za-z_]\w*)/g)].map(([, name]) => ({ name, in: "path", required: true, schema: { type: "string" } }));
}

/** Each property of the query's object schema as a query parameter (the token one included: it is how SSE and WebSockets authenticate). */
function queryParams(query: z.ZodType | undefined): unknown[] {
  if (query === undefined) return [];
  const s = jsonSchemaOf(query, "input") as { properties?: Record<string, Record<string, unknown>>; required?: string[] };
  return Object.entries(s.properties ?? {}).map(([name, schema]) => ({
    name, in: "query", required: (s.required ?? []).includes(name), schema,
    ...(typeof schema.description === "string" ? { description: schema.description } : {}),
  }));
}

function bodyOf(body: NonNullable<Operation["body"]>): unknown {
  const schema = body.schema === undefined ? {} : jsonSchemaOf(body.schema, "input");
  return { required: true, ...(body.description ? { description: body.description } : {}), content: Object.fromEntries(body.types.map((t) => [t, { schema }])) };
}

/** zod's JSON Schema of a schema as a client sends it ("input": before transforms); what has no JSON form is left open. */
function jsonSchemaOf(schema: z.ZodType, io: "input" | "output"): Record<string, unknown> {
  const out = z.toJSONSchema(schema, { io, unrepresentable: "any" }) as Record<string, unknown>;
  delete out.$schema;
  return out;
}
