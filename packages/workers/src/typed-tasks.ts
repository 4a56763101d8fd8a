/**
 * Typed tasks: call a task module's exports by name, with their argument and result types taken
 * from the module itself, so a misspelt name or a wrong argument is a compile error.
 *
 * ```ts
 * import type * as tasks from './tasks.js';   // the task module, types only
 * const run = bindTasks<typeof tasks>(pool);   // or bindTasks<typeof tasks>(proc)
 * const n = await run.scale({ areas: [kaddr], arg: 2 }); // arg: number, n: number
 * ```
 *
 * Main-thread code only; it imports the worker module for its types alone.
 *
 * @module
 */
import type { SabvmPool, TaskOptions } from './pool.js';
import type { ProcessRunOptions, SabvmProcess } from './process.js';
import type { TaskHandler } from './worker.js';

/** Export names of module `M` that are tasks (made with `defineTask`); `default` included. */
export type TaskName<M> = {
  [K in keyof M]: M[K] extends TaskHandler ? K : never;
}[keyof M] &
  string;

/** The argument type of task `K` of module `M`. */
export type TaskArg<M, K extends keyof M> = M[K] extends TaskHandler<unknown, infer A> ? A : never;

/** The result type of task `K` of module `M` (what `run` resolves with). */
export type TaskResult<M, K extends keyof M> =
  M[K] extends TaskHandler<infer R> ? Awaited<R> : never;

/** The options of a bound task: the runner's own, minus `name`, with `arg` typed. */
export type BoundOptions<O, A> = Omit<O, 'name' | 'arg'> & { readonly arg: A };

/** One function per task of module `M`, running it through a runner with options `O`. */
export type BoundTasks<M, O> = {
  readonly [K in TaskName<M>]: (
    options: BoundOptions<O, TaskArg<M, K>>,
  ) => Promise<TaskResult<M, K>>;
};

/**
 * Bind the tasks of module `M` (give its type: `bindTasks<typeof tasks>(pool)`) to a pool or a
 * process: `bound.name(options)` is `runner.run({ ...options, name })` (the `default` export runs
 * without a name), typed from the module. Context: main thread; never throws by itself.
 */
export function bindTasks<M>(runner: SabvmPool): BoundTasks<M, TaskOptions>;
export function bindTasks<M>(runner: SabvmProcess): BoundTasks<M, ProcessRunOptions>;
export function bindTasks<M>(
  runner: SabvmPool | SabvmProcess,
): BoundTasks<M, TaskOptions> | BoundTasks<M, ProcessRunOptions> {
  const run = (options: object): Promise<unknown> => runner.run(options);
  return new Proxy({} as BoundTasks<M, TaskOptions>, {
    get(_target, key) {
      if (typeof key !== 'string') return undefined;
      return (options: object) => run(key === 'default' ? options : { ...options, name: key });
    },
  });
}
