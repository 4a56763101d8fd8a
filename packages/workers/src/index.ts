/**
 * `@sabvm/workers`: Piscina worker threads as sabvm user processes.
 *
 * The main-thread API. A task module imports the worker side from `@sabvm/workers/worker`.
 *
 * @packageDocumentation
 */
export { SabvmError, errorFromWire } from './errors.js';
export {
  SabvmPool,
  taskMessageBytes,
  type PiscinaOptions,
  type SabvmPoolOptions,
  type TaskOptions,
} from './pool.js';
export {
  SabvmProcess,
  type AreaSpec,
  type Mapping,
  type ProcessRunOptions,
  type RunOptions,
} from './process.js';
export type { TaskMessage, TaskReply, WireError } from './protocol.js';
export {
  bindTasks,
  type BoundOptions,
  type BoundTasks,
  type TaskArg,
  type TaskName,
  type TaskResult,
} from './typed-tasks.js';
