// The web console's build: `node scripts/build.mjs` runs it into dist/console, which the
// broker serves at /console/ on its HTTP port.
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

export default defineConfig({
  root: fileURLToPath(new URL(".", import.meta.url)),
  base: "/console/",
  logLevel: "warn",
  build: {
    outDir: fileURLToPath(new URL("../dist/console", import.meta.url)),
    emptyOutDir: true,
    chunkSizeWarningLimit: 1000,
  },
  esbuild: { jsx: "automatic", jsxImportSource: "preact" },
});
