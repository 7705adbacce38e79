#!/usr/bin/env node
// The TypeScript CLI runs through tsx's loader so the package ships its .ts sources as-is.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
