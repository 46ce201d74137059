#!/usr/bin/env node
// Entry point of `npx hearth`: runs the TypeScript engine core directly (no build step), with the
// same `?raw` shader imports Vite gives the browser build.
import { register } from 'node:module';
import { register as registerTypeScript } from 'tsx/esm/api';

registerTypeScript();
// Registered after tsx so it runs first for `?raw` specifiers.
register('../src/node/raw-import-hooks.js', import.meta.url);

const { main } = await import('../src/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
