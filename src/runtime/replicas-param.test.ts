import { describe, expect, it } from 'vitest';
import { replicasParam } from './replicas-param';

describe('replicasParam', () => {
  it('reads a replica count, and refuses anything else with a reason', () => {
    expect(replicasParam(null)).toEqual({});
    expect(replicasParam('')).toEqual({});
    expect(replicasParam('5')).toEqual({ value: 5 });
    expect(replicasParam(' 1 ')).toEqual({ value: 1 });
    for (const bad of ['0', '8', '2.5', 'four', '-3', '1e3']) expect(replicasParam(bad).problem, bad).toMatch(/integer from 1 to 7/);
  });
});
