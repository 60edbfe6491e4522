#!/usr/bin/env bash
# CI's history chain (github-action-benchmark's gh-pages idea, with SQLite): fetch the history
# file from BRANCH, append this run's report.json / compare.json files, publish the dashboard
# folder and `history changes` for the step summary, and push the file back to BRANCH.
#
#   scripts/ci_history.sh BRANCH FILE SITE_DIR REPORT...     (run from the repository root)
#
# Environment: PERFSUITE (the perfsuite command, default `perfsuite`), REMOTE (default origin),
# GITHUB_STEP_SUMMARY (where the changes go, if set). Exit: the exit of `history changes`
# (1 = an unacknowledged regression at the latest level), after the push; 2 on bad input.
set -uo pipefail
branch=$1 file=$2 site=$3; shift 3
perfsuite=${PERFSUITE:-perfsuite}
remote=${REMOTE:-origin}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The branch holds only the history file; a first run starts it (an orphan branch).
tip=""
if git fetch -q "$remote" "$branch" 2>/dev/null; then
    tip=$(git rev-parse FETCH_HEAD)
    git show "$tip:$file" > "$work/$(basename "$file")" 2>/dev/null || rm -f "$work/$(basename "$file")"
fi
db="$work/$(basename "$file")"
$perfsuite history add "$@" --history "$db" || exit 2
$perfsuite history html "$site" --history "$db" || exit 2
$perfsuite history changes --history "$db" > "$work/changes.txt"
status=$?
{
    echo "### perfsuite history: change points"
    echo '```'
    cat "$work/changes.txt"
    echo '```'
} >> "${GITHUB_STEP_SUMMARY:-/dev/null}"
cat "$work/changes.txt"

# The file alone, as a commit with no parent, replaces the branch: git keeps every version of a
# binary whole, so a chain of commits would grow by the history's size at every run. The lease
# makes a push that raced another one fail rather than lose that run (the job's concurrency
# group serialises them in the first place).
export GIT_INDEX_FILE="$work/index"
git read-tree --empty
git update-index --add --cacheinfo "100644,$(git hash-object -w "$db"),$file"
tree=$(git write-tree)
who=(-c user.name=perfsuite -c user.email=perfsuite@localhost)
commit=$(git "${who[@]}" commit-tree "$tree" -m "history: $(date -u +%FT%TZ)")
git push -q --force-with-lease="refs/heads/$branch:$tip" "$remote" "$commit:refs/heads/$branch" \
    || { echo "ci_history: push to $branch failed (another run pushed first?)"; exit 2; }
exit "$status"
