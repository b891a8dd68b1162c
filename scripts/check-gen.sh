#!/usr/bin/env bash
# Fails when gen/ is not what `buf generate` makes from proto/, or when `buf lint` has findings.
# Compares against the last commit, so it works in a fresh clone and in CI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! git rev-parse --verify --quiet HEAD >/dev/null; then
  echo "check-gen: needs a git checkout with at least one commit" >&2
  exit 2
fi

failed=0

echo "check-gen: buf lint"
if ! npx buf lint; then
  echo "check-gen: buf lint found problems in proto/ (see above)." >&2
  failed=1
fi

echo "check-gen: buf generate"
npx buf generate

# Modified and deleted files show up in the diff against HEAD; new files only as untracked.
untracked="$(git ls-files --others --exclude-standard -- gen)"
if ! git diff --quiet HEAD -- gen || [ -n "$untracked" ]; then
  {
    echo "check-gen: gen/ is out of date with proto/."
    echo "Run \`npm run generate\` and commit the changes under gen/."
    git --no-pager diff --stat HEAD -- gen
    if [ -n "$untracked" ]; then
      echo "Untracked files under gen/:"
      sed 's/^/  /' <<<"$untracked"
    fi
  } >&2
  failed=1
fi

if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "check-gen: ok"
