/**
 * A SQL filter that cannot be stored: what is wrong and where. `index` is the UTF-16 offset
 * into the expression; `position` is the 1-based character (code point) a user counts to.
 */
export class SqlSyntaxError extends Error {
  override readonly name = "SqlSyntaxError";
  readonly position: number;
  readonly detail: string;

  constructor(expression: string, index: number, detail: string) {
    const position = characterPosition(expression, index);
    super(`SQL filter error at position ${position}: ${detail}.`);
    this.position = position;
    this.detail = detail;
  }
}

/** 1-based position in characters (a surrogate pair counts once) of a UTF-16 offset. */
export function characterPosition(text: string, index: number): number {
  let position = 1;
  for (const _ of text.slice(0, index)) position++;
  return position;
}
