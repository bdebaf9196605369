"""The exception tree. Every error the library raises is a :class:`ReconcilerError`.

Each class carries the process exit code the CLI uses for it, so the CLI maps errors to exit
codes in one place (click's style). Foreign exceptions (yaml, sqlite3, httpx) are translated
at the boundary with ``raise ... from``.

Exit codes (also in docs/exit-codes.md):

====  =========================================================================
0     success; for ``plan --detailed-exitcode``/``drift --detailed-exitcode``: nothing to do
1     error: bad input, stale or tampered plan, vendor refused, nothing applied
      (a plan already applied in full exits 0: "already applied, nothing sent")
2     ``--detailed-exitcode`` only: the plan has changes / drift was found
3     apply finished but some operations failed (the rest were applied)
4     apply stopped with operations in doubt; settle them with ``reconciler resolve``; or
      ``plan``/``apply`` refused because earlier operations are still pending or in doubt
5     another apply holds the state lock
====  =========================================================================
"""

from __future__ import annotations

from dataclasses import dataclass


def join_sentences(message: str, hint: str | None) -> str:
    """``message`` then ``hint``, with a full stop between them unless the message has one."""
    if not hint:
        return message
    stop = "" if message.rstrip().endswith((".", "!", "?", ":")) else "."
    return f"{message.rstrip()}{stop} {hint}"


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with the user's input, located and explained."""

    message: str
    file: str | None = None
    line: int | None = None
    hint: str | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        return f"{where}{join_sentences(self.message, self.hint)}"


class ReconcilerError(Exception):
    """Root of every error raised by reconciler."""

    exit_code: int = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return join_sentences(self.message, self.hint)


# --- configuration and desired state -------------------------------------------------------


class ConfigError(ReconcilerError):
    """The stock repository (reconciler.yaml, stock/*.yaml) is invalid.

    Holds every problem found, so the user fixes them all in one round.
    """

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in the stock repository"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class CredentialsError(ConfigError):
    """A target's credential is missing from the environment."""


# --- planning ----------------------------------------------------------------------------


class PlanError(ReconcilerError):
    """A plan could not be made or used."""


class GuardError(PlanError):
    """A guard stopped the plan; the message names the override."""

    def __init__(self, violations: list[str]) -> None:
        self.violations = list(violations)
        super().__init__(
            "the plan was stopped by guards:\n" + "\n".join(f"  {v}" for v in self.violations)
        )


class CountError(ReconcilerError):
    """A stock count could not be started or finished (docs/counts.md)."""


class PlanFileError(PlanError):
    """A saved plan is corrupt, of an unknown format version, or was edited after writing."""


class StalePlanError(PlanError):
    """The plan no longer matches the state or the desired files; nothing was sent."""


class AlreadyApplied(StalePlanError):
    """The plan (or the selected part of it) was applied in full before: nothing was sent.

    Exit 0: re-running a successful apply (a CI re-run) is not an error."""

    exit_code = 0


# --- vendors -----------------------------------------------------------------------------


class VendorError(ReconcilerError):
    """A vendor API answered with an error or could not be reached."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        body: str | None = None,
        retryable: bool = False,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.body = body
        self.retryable = retryable


class VendorRejected(VendorError):
    """A 4xx other than 429: the vendor refused the request. ``body`` is its words, verbatim."""


class VendorUnavailable(VendorError):
    """429, 5xx, timeouts, dropped connections: worth retrying."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, in_doubt: bool = False, **kw: object
    ) -> None:
        kw.setdefault("retryable", True)
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after
        # True: a write's connection dropped after it was sent, so it may have been applied;
        # the applier verifies it or marks it in doubt instead of re-sending.
        self.in_doubt = in_doubt


class NotSupported(VendorError):
    """The vendor cannot express this operation (e.g. delete on Run Free)."""


class InsecureTransportError(VendorError):
    """Plain http to a non-loopback host was refused."""


class AuthError(VendorError):
    """A credential could not be turned into an access token (refused key, revoked or reused
    refresh token, wrong client). Raised before the vendor request it was for was sent; the
    hint says what to do (usually ``reconciler auth login TARGET`` or a new key)."""


class MissingScopeError(PlanError):
    """The credential lacks a scope an operation of the plan needs; found before any write."""


# --- state and apply ---------------------------------------------------------------------


class StateError(ReconcilerError):
    """The state database could not be read or written."""


class LockHeld(StateError):
    exit_code = 5


class UnsettledOperations(StateError):
    """Earlier operations are pending or in doubt for positions a plan or apply would touch:
    until they are settled, B there may not be what the vendor holds, and a delta planned from
    it could be applied twice."""

    exit_code = 4


class ApplyIncomplete(ReconcilerError):
    """Apply ran, but not everything was applied. The summary says what."""

    exit_code = 3


class InDoubt(ApplyIncomplete):
    """Operations are in doubt; settle them with ``reconciler resolve``."""

    exit_code = 4
