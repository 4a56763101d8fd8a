/**
 * The plain Piscina task of the `dispatch` suite (the baseline): returns its argument.
 *
 * @module
 */
export default function echo(arg: number): number {
  return arg;
}
