/**
 * SQL LIKE patterns, matched without backtracking. A pattern is cut at each `%` into
 * segments of literal characters and `_` (any one character). The first segment must match
 * at the start and the last at the end; each segment in between is taken at its leftmost
 * match after the previous one. Taking the leftmost match is always safe, because the `%`
 * after it can absorb whatever a later match would have skipped, so one pass is enough:
 * O(n·m) for a value of n characters and a pattern of m, whatever the pattern.
 *
 * Characters are Unicode code points, as everywhere in the broker (semantics §8): `_`
 * matches one emoji, and a lone surrogate counts as one character.
 */

/** One character of a segment: the code point itself, or ANY for `_`. */
const ANY = null;
type PatternCharacter = string | typeof ANY;

export interface LikePattern {
  /**
   * The pattern cut at `%`: one segment when it has no `%`, otherwise one more segment than
   * it has `%` (empty ones where `%` starts or ends the pattern or two are adjacent).
   */
  segments: PatternCharacter[][];
}

/**
 * Reads a pattern; `escapeCharacter` makes the character after it literal (also `%`, `_` and the
 * escape character itself). Undefined when the pattern ends with the escape character.
 */
export function parseLikePattern(
  pattern: string,
  escapeCharacter: string | undefined,
): LikePattern | undefined {
  const segments: PatternCharacter[][] = [[]];
  let current = segments[0] ?? [];
  const characters = [...pattern];
  for (let i = 0; i < characters.length; i++) {
    const character = characters[i] ?? "";
    if (character === escapeCharacter) {
      const escaped = characters[++i];
      if (escaped === undefined) return undefined;
      current.push(escaped);
    } else if (character === "%") {
      current = [];
      segments.push(current);
    } else {
      current.push(character === "_" ? ANY : character);
    }
  }
  return { segments };
}

export function likeMatches(pattern: LikePattern, value: string): boolean {
  const { segments } = pattern;
  const characters = [...value];
  const first = segments[0] ?? [];
  if (segments.length === 1) {
    return characters.length === first.length && matchesAt(first, characters, 0);
  }
  const last = segments[segments.length - 1] ?? [];
  // The first and last segments are anchored and may not overlap.
  const end = characters.length - last.length;
  if (end < first.length) return false;
  if (!matchesAt(first, characters, 0) || !matchesAt(last, characters, end)) return false;
  let from = first.length;
  for (let s = 1; s < segments.length - 1; s++) {
    const segment = segments[s] ?? [];
    const found = leftmostMatch(segment, characters, from, end);
    if (found < 0) return false;
    from = found + segment.length;
  }
  return true;
}

/** Where `segment` first matches wholly within characters[from, end), or -1. */
function leftmostMatch(
  segment: PatternCharacter[],
  characters: string[],
  from: number,
  end: number,
): number {
  for (let at = from; at + segment.length <= end; at++) {
    if (matchesAt(segment, characters, at)) return at;
  }
  return -1;
}

function matchesAt(segment: PatternCharacter[], characters: string[], at: number): boolean {
  for (let k = 0; k < segment.length; k++) {
    const expected = segment[k];
    if (expected !== ANY && characters[at + k] !== expected) return false;
  }
  return true;
}
