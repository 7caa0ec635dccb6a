/**
 * No import cycles in src/, type-only imports included: dependency-cruiser walks the modules as
 * TypeScript sees them and this test fails naming every cycle it finds.
 */
import { cruise, type ICruiseResult } from 'dependency-cruiser';
import { expect, it } from 'vitest';
import { ROOT } from '../helpers/models.js';

/** Every cycle under `dirs`, each as the chain of modules that closes it (`a.ts -> b.ts -> a.ts`). */
export async function importCycles(dirs: string[], baseDir = ROOT): Promise<string[]> {
  const result = await cruise(
    dirs,
    {
      baseDir,
      validate: true,
      ruleSet: { forbidden: [{ name: 'no-circular', severity: 'error', from: {}, to: { circular: true } }] },
      // Type-only imports count: a cycle through types is still a cycle in the design.
      tsPreCompilationDeps: true,
      doNotFollow: { path: 'node_modules' },
    },
    undefined,
    { tsConfig: { fileName: `${baseDir}/tsconfig.json` } },
  );
  const output = result.output as ICruiseResult;
  const cycles = new Set<string>();
  for (const v of output.summary.violations) {
    const chain = [v.from, ...(v.cycle ?? []).map((c) => (typeof c === 'string' ? c : c.name))];
    // One cycle is reported once per module on it: keep the rotation that starts at its smallest name.
    const ring = chain.slice(0, -1);
    const start = ring.indexOf([...ring].sort()[0]!);
    cycles.add([...ring.slice(start), ...ring.slice(0, start), ring[start]].join(' -> '));
  }
  return [...cycles].sort();
}

it('src/ has no import cycles', async () => {
  const cycles = await importCycles(['src']);
  expect(cycles, `import cycles:\n${cycles.join('\n')}`).toEqual([]);
}, 60_000);
