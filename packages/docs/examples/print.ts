/**
 * How the examples show a value: `print(label, value)`. Run by hand they log to the console; the
 * tests pass a collector and check every printed value.
 */

/** Show `value` under `label`. */
export type Print = (label: string, value: unknown) => void;

/** The default {@link Print}: `console.log`. */
export const consolePrint: Print = (label, value) => {
  console.log(label, value);
};
