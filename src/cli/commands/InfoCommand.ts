import type { CommandModule } from 'yargs';
import { addon } from '../../native.js';
import { VERSION } from '../../version.js';

export const InfoCommand: CommandModule<object, { json: boolean }> = {
  command: 'info',
  describe: 'print the version, the kernel instruction set in use and the ones available',
  builder: (y) => y.option('json', { type: 'boolean', default: false, describe: 'print the information as JSON on stdout' }) as never,
  handler: (args) => {
    const i = addon().info();
    const info = { version: VERSION, node: process.version, platform: `${process.platform}-${process.arch}`, ...i };
    if (args.json) process.stdout.write(JSON.stringify(info, null, 2) + '\n');
    else process.stdout.write(`quantkit ${VERSION} (node ${process.version}, ${info.platform}, N-API ${i.napiVersion})\nkernels: ${i.isa ?? `unavailable: ${i.isaError}`} (available: ${i.available.join(', ')})\n`);
  },
};
