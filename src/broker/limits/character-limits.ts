/**
 * The "characters" of the limits in semantics §8 are Unicode code points, counted the same
 * way for every field: an emoji is one character, though JavaScript's `.length` (UTF-16
 * code units) says two. A lone surrogate counts as one.
 */
import { type ErrorSubject, InvalidArgumentError } from "../errors.js";

/** Session ids, message ids and reply-to session ids: characters (code points). */
export const MAX_ID_LENGTH = 128;

/** How many code points `text` holds; linear, without building an array. */
export function codePointLength(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    // A high surrogate followed by a low one is one code point: skip the low one.
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    count++;
  }
  return count;
}

/** The sentence every refusal of a too-long field uses, so all say what was counted. */
export function tooLongMessage(field: string, length: number, limit: number): string {
  return `${field} is ${length} characters (Unicode code points) long. At most ${limit} are allowed.`;
}

/** Throws InvalidArgumentError on `field` if `value` has more than `limit` code points. */
export function checkCharacterLimit(
  value: string,
  limit: number,
  field: string,
  subject: ErrorSubject = {},
): void {
  // Never more code points than UTF-16 units: most values need no counting.
  if (value.length <= limit) return;
  const length = codePointLength(value);
  if (length > limit) {
    throw new InvalidArgumentError(field, tooLongMessage(field, length, limit), subject);
  }
}
