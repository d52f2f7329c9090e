/**
 * The dashboard's static files from web/ (and vendored package files),
 * served by name from an allow-list: no path from the request reaches the
 * file system.
 */
import { Hono } from "hono";
import { join } from "node:path";

/**
 * Where the files are. From source: web/ and uPlot's dist/ in the checkout.
 * In the one-file executable (scripts/build-exe.ts): embedded under
 * /$bunfs/root (import.meta.dir is then the bundle's), web/ as web/ and
 * uPlot's two files at the root.
 */
const compiled = Bun.isStandaloneExecutable;
const webDir = compiled ? join(import.meta.dir, "web") : join(import.meta.dir, "../../../web");
const uplotDir = compiled ? import.meta.dir : join(import.meta.dir, "../../../node_modules/uplot/dist");
const types: Record<string, string> = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".png": "image/png", ".svg": "image/svg+xml",
};

/** URL path → file on disk. */
const files: Record<string, string> = {
  "/": join(webDir, "index.html"),
  "/index.html": join(webDir, "index.html"),
  "/app.js": join(webDir, "app.js"),
  "/style.css": join(webDir, "style.css"),
  "/dashboard.js": join(webDir, "dashboard.js"),
  "/charts.js": join(webDir, "charts.js"),
  "/views.js": join(webDir, "views.js"),
  "/busiest.js": join(webDir, "busiest.js"),
  "/link.js": join(webDir, "link.js"),
  "/picker.js": join(webDir, "picker.js"),
  "/select.js": join(webDir, "select.js"),
  "/beacon.js": join(webDir, "beacon.js"), // for other sites' pages: README "Page-load watch"
  "/vendor/uPlot.esm.js": join(uplotDir, "uPlot.esm.js"),
  "/vendor/uPlot.min.css": join(uplotDir, "uPlot.min.css"),
};

export function staticRoutes(): Hono {
  const app = new Hono();
  for (const [path, file] of Object.entries(files)) {
    const type = types[file.slice(file.lastIndexOf("."))] ?? "application/octet-stream";
    app.get(path, async (c) => {
      const f = Bun.file(file);
      if (!(await f.exists())) return c.json({ error: `path: ${path} is missing from this install` }, 404);
      return new Response(f, { headers: { "Content-Type": type, "Cache-Control": "no-cache" } });
    });
  }
  return app;
}
