/**
 * The Web Worker of one user process on the live memory map: wires the protocol handler of
 * `src/live-map/user-process.ts` to this worker's message port.
 */
import { createUserProcess, type ToUserProcess } from '../../src/live-map/user-process.js';

interface WorkerScope {
  onmessage: ((event: MessageEvent<ToUserProcess>) => void) | null;
  postMessage(message: unknown): void;
  close(): void;
}

const scope = globalThis as unknown as WorkerScope;
const handle = createUserProcess(
  (message) => {
    scope.postMessage(message);
  },
  () => {
    scope.close();
  },
);
scope.onmessage = (event) => {
  void handle(event.data);
};
