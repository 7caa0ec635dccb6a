/**
 * The package's root folder (package.json, build/ or prebuilds/ with the addon, data/), found from a
 * module's URL by walking up to the package.json named quantkit: the compiled library sits one or two
 * folders below it (dist/native.js, dist/report/index.js), the bundled CLI in dist/cli/, the sources
 * under src/ when run through tsx.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageRoot(moduleUrl: string): string {
  const start = dirname(fileURLToPath(moduleUrl));
  for (let dir = start; ; dir = dirname(dir)) {
    try {
      if ((JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown }).name === 'quantkit') return dir;
    } catch {
      // no package.json here, or not JSON: keep walking up
    }
    if (dirname(dir) === dir) return dirname(start); // not found: the layout of the compiled library
  }
}
