/**
 * Every published measurement in test/fixtures/memory/memory-cases-dev.json is predicted and compared,
 * with a tolerance fit for its kind (scripts/memory-cases.ts says which and why, per row).
 */
import { describe, expect, it } from 'vitest';
import { CASES, CONFIGS, SETUPS, runCase } from '../../scripts/memory-cases.js';
import { fromConfig } from '../../src/estimate/model.js';

describe('published memory measurements', () => {
  it('has a setup for every case and a case for every setup', () => {
    expect(CASES.length).toBe(40);
    expect(new Set(CASES.map((c) => c.id))).toEqual(new Set(Object.keys(SETUPS)));
  });

  for (const c of CASES) {
    it(`${c.id}: ${c.measured_value} ${c.measured_unit} (${SETUPS[c.id]?.why})`, async () => {
      const r = await runCase(c);
      const allowed = Math.max(r.setup.tolerance * r.measured, r.setup.absoluteTolerance ?? 0);
      expect(Math.abs(r.predicted - r.measured), `predicted ${r.predicted} vs measured ${r.measured} bytes`).toBeLessThanOrEqual(allowed);
    });
  }

  it('derives each case model\'s exact parameter count from its config alone', () => {
    const byConfig = new Map<string, number>();
    for (const c of CASES) {
      const s = SETUPS[c.id]!;
      if (s.config && c.model.params) byConfig.set(s.config, c.model.params);
    }
    expect(byConfig.size).toBeGreaterThanOrEqual(7);
    for (const [config, params] of byConfig) expect(fromConfig(CONFIGS[config]!, `${config}/config.json`).params, config).toBe(params);
  });

  it('stays within 5% mean absolute error per scenario', async () => {
    const errors: Record<string, number[]> = {};
    for (const c of CASES) (errors[c.scenario] ??= []).push(Math.abs((await runCase(c)).error));
    for (const [scenario, e] of Object.entries(errors)) {
      const mae = e.reduce((a, b) => a + b, 0) / e.length;
      expect(mae, scenario).toBeLessThan(scenario === 'packed_size' ? 0.01 : 0.1);
    }
  });
});
