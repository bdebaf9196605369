#!/usr/bin/env python3
"""A stand-in for GitHub's `gh` CLI in the end-to-end tests: the subcommands the workflows call,
answered from one JSON file ($FAKE_GITHUB) the test reads. `--jq` goes through the real `jq -r`,
so the workflows' own filters are what select the data. A read-only token (GH_TOKEN=read-only, a
fork's pull_request run) gets GitHub's 403 for every write, as GitHub answers it."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

WRITE_DENIED = "HTTP 403: Resource not accessible by integration"


class Usage(Exception):
    pass


def option(args: list[str], name: str, default: str | None = None) -> str | None:
    return args[args.index(name) + 1] if name in args else default


def body_of(args: list[str]) -> str:
    if "--body-file" in args:
        return Path(option(args, "--body-file") or "").read_text(encoding="utf-8")
    if "-F" in args:
        field = option(args, "-F") or ""
        key, _, value = field.partition("=")
        assert key == "body", field
        return Path(value[1:]).read_text(encoding="utf-8") if value.startswith("@") else value
    return option(args, "--body") or ""


def emit(data: Any, args: list[str]) -> None:
    text = json.dumps(data)
    if "--jq" in args:
        done = subprocess.run(["jq", "-r", option(args, "--jq") or "."], input=text, capture_output=True, text=True)
        if done.returncode:
            sys.stderr.write(done.stderr)
            raise SystemExit(done.returncode)
        sys.stdout.write(done.stdout)
    else:
        sys.stdout.write(text + "\n")


def pr_of(db: dict[str, Any], number: str) -> dict[str, Any]:
    for pr in db["pulls"]:
        if str(pr["number"]) == str(number):
            return pr
    raise Usage(f"no pull request {number}")


def api(db: dict[str, Any], args: list[str], write: bool) -> bool:
    """Returns whether the database changed."""
    method = option(args, "--method", "GET")
    path = next(a for a in args[1:] if not a.startswith("-") and a.startswith("repos/"))
    parts = path.split("?")[0].split("/")[3:]  # after repos/OWNER/NAME
    query = dict(p.split("=", 1) for p in path.split("?", 1)[1].split("&")) if "?" in path else {}
    if method == "PATCH" and parts[:2] == ["issues", "comments"]:
        if not write:
            raise PermissionError
        for pr in db["pulls"]:
            for comment in pr["comments"]:
                if str(comment["id"]) == parts[2]:
                    comment["body"] = body_of(args)
                    return True
        raise Usage(f"no comment {parts[2]}")
    if parts[0] == "pulls":
        emit(pr_of(db, parts[1]), args)
    elif parts[0] == "issues" and parts[2] == "comments":
        emit(pr_of(db, parts[1])["comments"], args)
    elif parts[0] == "commits" and parts[2] == "pulls":
        emit([pr for pr in db["pulls"] if parts[1] in (pr.get("merge_commit_sha"), pr["head"]["sha"])], args)
    elif parts[:2] == ["actions", "artifacts"]:
        arts = [a for a in db["artifacts"] if a["name"] == query.get("name", a["name"])]
        emit({"total_count": len(arts), "artifacts": arts}, args)
    else:
        raise Usage(f"gh api {path}: not served by the stand-in")
    return False


def pr_command(db: dict[str, Any], args: list[str], write: bool) -> bool:
    if not write:
        raise PermissionError
    pr = pr_of(db, args[2])
    if args[1] == "comment":
        db["next_id"] += 1
        pr["comments"].append({"id": db["next_id"], "body": body_of(args)})
    elif args[1] == "edit" and "--add-label" in args:
        label = option(args, "--add-label")
        if label not in db["labels"]:
            raise Usage(f"'{label}' not found")
        pr["labels"] = sorted(set(pr["labels"]) | {label})
    elif args[1] == "edit" and "--remove-label" in args:
        label = option(args, "--remove-label")
        if label not in pr["labels"]:
            raise Usage(f"the pull request has no label {label}")
        pr["labels"].remove(label)
    else:
        raise Usage(" ".join(args))
    return True


def issue_command(db: dict[str, Any], args: list[str], write: bool) -> bool:
    sub = args[1]
    if sub == "list":
        state, label = option(args, "--state", "open"), option(args, "--label")
        found = [{"number": i["number"], "body": i["body"]} for i in db["issues"]
                 if i["state"] == state and (label is None or label in i["labels"])]
        emit(found, args)
        return False
    if not write:
        raise PermissionError
    if sub == "create":
        db["next_id"] += 1
        db["issues"].append({"number": db["next_id"], "title": option(args, "--title"), "body": body_of(args),
                             "labels": [option(args, "--label")], "state": "open", "comments": [], "edits": 0})
        print(f"https://github.test/issues/{db['next_id']}")
        return True
    issue = next(i for i in db["issues"] if str(i["number"]) == args[2])
    if sub == "edit":
        issue["body"] = body_of(args)
        issue["edits"] += 1
    elif sub == "comment":
        issue["comments"].append(body_of(args))
    elif sub == "close":
        issue["state"] = "closed"
    else:
        raise Usage(" ".join(args))
    return True


def main(args: list[str]) -> int:
    path = Path(os.environ["FAKE_GITHUB"])
    write = os.environ.get("GH_TOKEN") != "read-only"
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        db = json.loads(path.read_text(encoding="utf-8"))
        db["calls"].append(args)
        try:
            if args[0] == "api":
                changed = api(db, args, write)
            elif args[0] == "pr":
                changed = pr_command(db, args, write)
            elif args[0] == "issue":
                changed = issue_command(db, args, write)
            elif args[0] == "label" and args[1] == "create":
                if not write:
                    raise PermissionError
                db["labels"] = sorted(set(db["labels"]) | {args[2]})
                changed = True
            else:
                raise Usage(" ".join(args))
        except PermissionError:
            db["denied"].append(args)
            path.write_text(json.dumps(db, indent=1), encoding="utf-8")
            print(WRITE_DENIED, file=sys.stderr)
            return 1
        except Usage as exc:
            path.write_text(json.dumps(db, indent=1), encoding="utf-8")
            print(f"gh: {exc}", file=sys.stderr)
            return 1
        del changed
        path.write_text(json.dumps(db, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
