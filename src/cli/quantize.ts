#!/usr/bin/env node
/** The `quantize` executable: `quantkit quantize` under its own name. */
import { exitOnEarlySignal, exitWhenFlushed } from './signals.js';

exitOnEarlySignal();
const { hideBin } = await import('yargs/helpers');
const { main } = await import('./main.js');
await exitWhenFlushed(await main(['quantize', ...hideBin(process.argv)]));
