#!/usr/bin/env node
/** `quantize ARGS` is `quantkit quantize ARGS`. */
import { hideBin } from 'yargs/helpers';
import { main } from './main.js';

main(['quantize', ...hideBin(process.argv)]).then((code) => {
  process.exitCode = code;
});
