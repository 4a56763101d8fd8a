/**
 * Runs once before the tests: compile the examples, generate the API reference, build the site
 * (each step only when its output is stale).
 */
import { buildApiReference, buildExamples, buildSite } from './site.js';

export default function setup(): void {
  buildExamples();
  buildApiReference();
  buildSite();
}
