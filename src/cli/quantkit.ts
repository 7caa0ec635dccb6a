#!/usr/bin/env node
/** The `quantkit` executable. */
import { exitOnEarlySignal, exitWhenFlushed } from './signals.js';

// Before the rest of the CLI loads: a Ctrl-C during start-up exits 130 like one during a run.
exitOnEarlySignal();
const { hideBin } = await import('yargs/helpers');
const { main } = await import('./main.js');
await exitWhenFlushed(await main(hideBin(process.argv)));
