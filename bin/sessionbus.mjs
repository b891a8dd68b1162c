#!/usr/bin/env node
// Launcher of the sessionbus CLI: runs src/cli/main.ts through tsx.
import { register } from "tsx/esm/api";

register();
await import("../src/cli/main.ts");
