/**
 * The continuous views' admin routes (API.md "Views and reference tables"),
 * role admin: the views, one view, a view put or deleted (definitions.ts).
 * A view's results are series view.<name>{…}, read like any series.
 */
import type { Hono } from "hono";
import { limits } from "../../runtime/limits.ts";
import type { AppDeps } from "../app.ts";
import { definitionRoutes } from "./definitions.ts";
import { viewSchema } from "../../actors/views/view.ts";

export function viewsRoutes(deps: AppDeps): Hono {
  return definitionRoutes(deps, {
    path: "/api/v1/views", what: "view", book: deps.views, list: () => ({ views: deps.views.list() }),
    nameCharsMax: limits.viewNameCharsMax, bodyBytesMax: limits.ruleBodyBytesMax, schema: viewSchema.partial({ name: true }),
  });
}
