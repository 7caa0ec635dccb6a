#!/usr/bin/env node
/** The `quantkit` executable. */
import { hideBin } from 'yargs/helpers';
import { main } from './main.js';

main(hideBin(process.argv)).then((code) => {
  process.exitCode = code;
});
