/**
 * The sabvm task of the `dispatch` suite: returns its number argument (the cost of dispatch
 * alone, no work).
 *
 * @module
 */
import { defineTask, type TaskHandler } from '@sabvm/workers/worker';

const echo: TaskHandler<number, number> = defineTask<number, number>(({ arg }) => arg);
export default echo;
