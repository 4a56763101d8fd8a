/**
 * The sabvm task of the `handoff` suite: touches every page of its first mapped range through
 * zero-copy views (`segments`) and returns the number of pages touched.
 *
 * @module
 */
import { defineTask, type TaskHandler } from '@sabvm/workers/worker';
import { touchPages } from './handoff-protocol.js';

const touch: TaskHandler<number> = defineTask(({ ranges }) => {
  let pages = 0;
  for (const range of ranges) {
    for (const view of range.segments({ write: true })) pages += touchPages(view);
  }
  return pages;
});
export default touch;
