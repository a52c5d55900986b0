/**
 * `--name N` from the command line of the developer tools (idle.ts, profile-kv.ts,
 * crash-timeline.ts): the number, or `d` when the option is absent. A value that is not
 * a number stops the tool with the option's name rather than running with NaN.
 */
export function numberArg(name: string, d: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return d;
  const raw = process.argv[i + 1];
  const v = Number(raw);
  if (raw === undefined || raw.trim() === '' || !Number.isFinite(v)) throw new Error(`--${name} needs a number (got ${raw ?? 'nothing'})`);
  return v;
}
