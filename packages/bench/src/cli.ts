#!/usr/bin/env node
/**
 * `sabvm-bench` (`npm run bench -- [options]`): run the suites, or compare two runs.
 *
 * Paths (`--out`, `--compare` files) are resolved against the directory `npm run` was started
 * from (`INIT_CWD`), else the current directory — so `npm run bench` at the repository root writes
 * `./bench-results/` there.
 *
 * @module
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { compareRuns, loadRun } from './compare.js';
import { runBench, SUITES } from './run.js';

const HELP = `usage: npm run bench -- [--quick] [--suite NAME]... [--out DIR] [--reps N] [--time MS]
       npm run bench -- --compare A.json B.json

  --quick          smoke check: fewer reps, shorter budgets (under two minutes in all)
  --suite NAME     run only this suite (repeatable): ${SUITES.map((s) => s.name).join(', ')}
  --out DIR        where to write <timestamp>.json and report.html (default: bench-results)
  --reps N         reps per group (default 3 quick, 7 full)
  --time MS        tinybench time budget per row per rep (default 30 quick, 150 full)
  --compare A B    print the change from run A to run B (two JSON files of earlier runs)
`;

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1)
    throw new Error(`--${name} must be a positive integer, got ${value}`);
  return n;
}

async function main(argv: readonly string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      suite: { type: 'string', multiple: true },
      out: { type: 'string', default: 'bench-results' },
      reps: { type: 'string' },
      time: { type: 'string' },
      compare: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const base = process.env.INIT_CWD ?? process.cwd();
  if (values.compare) {
    const [a, b] = positionals;
    if (a === undefined || b === undefined || positionals.length !== 2)
      throw new Error('--compare needs two JSON files');
    process.stdout.write(`${compareRuns(loadRun(resolve(base, a)), loadRun(resolve(base, b)))}\n`);
    return 0;
  }
  if (positionals.length > 0) throw new Error(`unexpected argument ${positionals[0] ?? ''}`);
  const reps = positiveInt('reps', values.reps);
  const timeMs = positiveInt('time', values.time);
  const outcome = await runBench({
    outDir: resolve(base, values.out),
    quick: values.quick,
    ...(values.suite === undefined ? {} : { suites: values.suite.flatMap((s) => s.split(',')) }),
    ...(reps === undefined ? {} : { reps }),
    ...(timeMs === undefined ? {} : { timeMs }),
  });
  return outcome.ok ? 0 : 1;
}

let settled = false;
// A wait that nothing keeps alive (a pending Atomics.waitAsync does not) would end the process in
// the middle of a run, silently and with exit code 0: say so and fail instead.
process.on('beforeExit', () => {
  if (settled) return;
  process.stderr.write(
    'sabvm-bench: the event loop ran dry before the run finished (a wait with nothing keeping the process alive)\n',
  );
  process.exit(3);
});
main(process.argv.slice(2)).then(
  (code) => {
    settled = true;
    process.exitCode = code;
  },
  (error: unknown) => {
    settled = true;
    process.stderr.write(
      `sabvm-bench: ${error instanceof Error ? error.message : String(error)}\n\n${HELP}`,
    );
    process.exitCode = 2;
  },
);
