/** A file imported `with { type: "file" }` (src/exe.ts): its path, on disk or in the executable's /$bunfs. */
declare module "*.so" {
  const path: string;
  export default path;
}
