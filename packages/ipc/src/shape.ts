import { WireFormatError, type WireFormatErrorCode } from './errors.js';

/*
 * Helpers that check parsed JSON against a fixed object shape and render bad
 * values for error messages. Internal to this package.
 */

/** Code points of a string shown in an error message before it is cut. */
const RENDERED_STRING_MAX = 40;

/** Names the JSON type of `value` the way error messages do: `null`, `array`, `string` and so on. */
export function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

/**
 * Renders `value` for an error message. Strings are quoted with JSON escapes,
 * so NUL, newlines and other control characters stay visible. Long ones
 * are cut after 40 code points and followed by their UTF-8 length.
 */
export function renderValue(value: unknown): string {
  if (typeof value === 'string') {
    // Slicing before Array.from keeps this cheap for multi-megabyte strings.
    const codePoints = Array.from(value.slice(0, RENDERED_STRING_MAX * 2));
    if (codePoints.length <= RENDERED_STRING_MAX && codePoints.join('') === value) {
      return JSON.stringify(value);
    }
    const head = codePoints.slice(0, RENDERED_STRING_MAX).join('');
    return `${JSON.stringify(head)}... (${Buffer.byteLength(value, 'utf8')} bytes)`;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || value === null) {
    return String(value);
  }
  return describeType(value);
}

/** Field-path prefix and error code for the checks of one object. */
export interface ShapeContext {
  /** Name of the object in messages, such as `config` or `error`. */
  name: string;
  /** Prefix of field paths, such as `error.`, or '' for top-level config fields. */
  fieldPrefix: string;
  code: WireFormatErrorCode;
}

/** Creates the error for an invalid field. The message starts with the field path. */
export function invalidField(context: ShapeContext, field: string, problem: string): WireFormatError {
  return new WireFormatError(context.code, `${field} ${problem}`, { field });
}

/**
 * Checks that `value` is a plain JSON object with every required field and no
 * field outside `required` and `optional`, and returns it as a record.
 */
export function checkObjectFields(
  value: unknown,
  context: ShapeContext,
  required: readonly string[],
  optional: readonly string[] = [],
): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WireFormatError(context.code, `${context.name} must be an object, got ${describeType(value)}`, {
      field: context.name,
    });
  }
  const record = value as Record<string, unknown>;

  for (const key of Object.keys(record)) {
    if (!required.includes(key) && !optional.includes(key)) {
      throw new WireFormatError(context.code, `${context.name} has unknown field ${JSON.stringify(key)}`, {
        field: `${context.fieldPrefix}${key}`,
      });
    }
  }

  for (const key of required) {
    if (!Object.hasOwn(record, key)) {
      throw new WireFormatError(context.code, `${context.name} is missing field ${JSON.stringify(key)}`, {
        field: `${context.fieldPrefix}${key}`,
      });
    }
  }
  return record;
}

/** Returns `value` if it is a string, else throws naming its type. */
export function checkString(value: unknown, context: ShapeContext, field: string): string {
  if (typeof value !== 'string') {
    throw invalidField(context, field, `must be a string, got ${describeType(value)}`);
  }
  return value;
}

/** Returns `value` if it is a string without NUL, else throws. */
export function checkCString(value: unknown, context: ShapeContext, field: string): string {
  const text = checkString(value, context, field);
  if (text.includes('\0')) {
    throw invalidField(context, field, `${renderValue(text)} contains a NUL byte, which C strings cannot hold`);
  }
  return text;
}

/** Returns `value` if it is an array of strings without NUL, else throws naming the bad element. */
export function checkCStringArray(value: unknown, context: ShapeContext, field: string): string[] {
  if (!Array.isArray(value)) {
    throw invalidField(context, field, `must be an array of strings, got ${describeType(value)}`);
  }
  return value.map((element, index) => checkCString(element, context, `${field}[${index}]`));
}
