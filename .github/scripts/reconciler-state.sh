#!/usr/bin/env bash
# reconciler-state.sh MODE: the SQLite state of the GitOps workflows, kept on the orphan branch
# $STATE_BRANCH of origin (docs/gitops.md, "State in CI"). Every move of that branch is a
# compare-and-swap (git push --force-with-lease=<ref>:<expected>), so two runs never both win.
# Run from the root of a checkout of the repository, after `reconciler` is installed:
#   bash .github/scripts/reconciler-state.sh read|claim|save|init
#   read   restore the state file (plan, drift); warn when an apply holds the state
#   claim  restore it and push a LOCK commit (compare-and-swap) before apply sends anything
#   save   push the state after apply on top of this run's claim (compare-and-swap)
#   init   create the branch with a fresh state database (once per repository)
#   seed   create the branch with the local state file (the one `reconciler init --from` wrote)
set -euo pipefail
shopt -s inherit_errexit  # functions run inside $(...) stop at their first failure too
mode="${1:-}"
branch="${STATE_BRANCH:-reconciler-state}"
state="${RECONCILER_STATE:-.reconciler/state.db}"
out="${GITHUB_OUTPUT:-/dev/null}"
run="${GITHUB_SERVER_URL:-local}/${GITHUB_REPOSITORY:-repository}/actions/runs/${GITHUB_RUN_ID:-0}"
export GIT_AUTHOR_NAME="${GIT_AUTHOR_NAME:-reconciler-ci}"
export GIT_AUTHOR_EMAIL="${GIT_AUTHOR_EMAIL:-reconciler-ci@users.noreply.github.com}"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"

remote_head() {  # the branch's commit; empty when it does not exist; unreachable: stop
  local rc=0 line=""
  line=$(git ls-remote --exit-code origin "refs/heads/$branch") || rc=$?
  case "$rc" in
    0) echo "${line%%[[:space:]]*}" ;;
    2) echo "" ;;
    *) echo "::error::cannot read the $branch branch from origin (git ls-remote exit $rc)" >&2; return 1 ;;
  esac
}

push_cas() {  # push_cas COMMIT EXPECTED: move the branch only if it still points at EXPECTED
  if ! git push --quiet origin "$1:refs/heads/$branch" --force-with-lease="refs/heads/$branch:$2"; then
    echo "::error::the $branch branch moved under this run (expected ${2:-no branch}); nothing was overwritten. See docs/gitops.md, 'State in CI'." >&2
    return 1
  fi
}

commit_state() {  # commit_state FILE PARENT MESSAGE [LOCK TEXT]: prints the new commit
  # Each command substitution is its own assignment: a failure inside one used as an argument
  # would be ignored even under `set -e`.
  local blob entries tree
  blob=$(git hash-object -w "$1")
  entries=$(printf '100644 blob %s\tstate.db' "$blob")
  if [ -n "${4:-}" ]; then
    blob=$(printf '%s\n' "$4" | git hash-object -w --stdin)
    entries="$entries"$'\n'$(printf '100644 blob %s\tLOCK' "$blob")
  fi
  tree=$(printf '%s\n' "$entries" | git mktree)
  git commit-tree "$tree" ${2:+-p "$2"} -m "$3"
}

snapshot() {  # a consistent one-file copy of the state; prints its path
  # SQLite's backup API (`reconciler state snapshot`): the state runs in WAL mode, where the
  # newest committed pages may still sit in state.db-wal, which a copy of state.db would lose.
  local copy
  copy="$(mktemp -d)/state.db"
  reconciler state snapshot "$copy" --state "$state" >&2
  echo "$copy"
}

restore() {  # restore MODE
  local head locked=false
  head=$(remote_head)
  if [ -z "$head" ]; then
    echo "::error::there is no $branch branch yet: run the 'reconciler apply' workflow by hand once (Actions, reconciler apply, Run workflow) to create the state. See docs/gitops.md." >&2
    return 1
  fi
  git fetch --quiet --no-tags --depth=1 origin "+refs/heads/$branch:refs/remotes/origin/$branch"
  mkdir -p "$(dirname "$state")"
  rm -f "$state" "$state-wal" "$state-shm"
  git show "$head:state.db" > "$state"
  if git cat-file -e "$head:LOCK" 2>/dev/null; then locked=true; fi
  echo "head=$head" >> "$out"
  echo "locked=$locked" >> "$out"
  if [ "$locked" = true ]; then
    if [ "$1" = claim ]; then
      echo "held_by=$(git show "$head:LOCK" | head -n 1)" >> "$out"
      echo "::error::the state is claimed by another apply ($(git show "$head:LOCK")). If that run has finished or died, see docs/gitops.md, 'A stuck state claim'." >&2
      return 1
    fi
    echo "::warning::an apply holds the state ($(git show "$head:LOCK")); it may change when that apply finishes." >&2
  fi
  if [ "$1" = claim ]; then
    claim=$(commit_state "$state" "$head" "claim: $run" "apply in progress: $run")
    push_cas "$claim" "$head"
    echo "claim=$claim" >> "$out"
  fi
}

case "$mode" in
  read|claim) restore "$mode" ;;
  save)
    : "${STATE_CLAIM:?STATE_CLAIM must be the claim commit of this run}"
    copy=$(snapshot)
    saved=$(commit_state "$copy" "$STATE_CLAIM" "state after $run")
    push_cas "$saved" "$STATE_CLAIM"
    echo "saved=$saved" >> "$out" ;;
  init)
    head=$(remote_head)
    if [ -n "$head" ]; then echo "the $branch branch exists already ($head); nothing to do"; exit 0; fi
    mkdir -p "$(dirname "$state")"
    rm -f "$state" "$state-wal" "$state-shm"
    reconciler state init --state "$state" >&2
    copy=$(snapshot)
    saved=$(commit_state "$copy" "" "initial state: $run")
    push_cas "$saved" ""
    echo "saved=$saved" >> "$out" ;;
  seed)
    head=$(remote_head)
    if [ -n "$head" ]; then echo "::error::the $branch branch exists already ($head); nothing was pushed" >&2; exit 1; fi
    if [ ! -s "$state" ]; then echo "::error::no state at $state to seed the branch with (run reconciler init --from)" >&2; exit 1; fi
    copy=$(snapshot)
    saved=$(commit_state "$copy" "" "initial state from reconciler init --from: $run")
    push_cas "$saved" ""
    echo "saved=$saved" >> "$out" ;;
  *) echo "usage: reconciler-state.sh read|claim|save|init|seed" >&2; exit 2 ;;
esac
