"""One GitHub API session: bounded retries, bounded rate-limit waits, never a duplicate POST.

PyGithub's own retry (``GithubRetry``) retries a POST after a 5xx, which can post a second
comment when the first one landed, and it sleeps for as long as a rate limit asks. So it is
switched off here (``retry=None``) and every call goes through :meth:`Session.call`:

======================  =========================================================================
the API answers         what happens
======================  =========================================================================
a rate limit (403/429)  wait what GitHub asks (``Retry-After``, else ``X-RateLimit-Reset``, else
                        60 s for a secondary limit) if that is at most ``max_wait``; otherwise a
                        :class:`~ci.errors.PostError` naming the wait
5xx, connection error   a GET or PATCH is tried again (``attempts`` in all, pauses doubling);
                        a POST is never blindly repeated: :meth:`Session.create_once` first
                        looks for what the failed POST may have created and adopts it
anything else           a :class:`~ci.errors.PostError` with the HTTP status and GitHub's
                        message (never the token)
======================  =========================================================================

:meth:`Session.login` is the account the token writes as, so that the sticky comment is
found by its marker *and* its author: ``GET /user`` for a personal token; an installation
token (``GITHUB_TOKEN``, a GitHub App) may not call it, so then the GraphQL ``viewer``.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import github
import github.Auth
from github.GithubException import GithubException
from github.Repository import Repository

from ci.errors import PostError

T = TypeVar("T")
SECONDARY_WAIT = 60.0  # GitHub: "wait at least one minute" when no Retry-After is given
BOT_SUFFIX = "[bot]"


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How patient the session is. Tests set the pauses to 0 and inject ``sleep``."""

    api_url: str = "https://api.github.com"
    timeout: float = 30.0
    attempts: int = 3  # tries of one request on a 5xx or a connection error
    backoff: float = 1.0  # seconds before the second try; doubled before each further one
    max_wait: float = 90.0  # the longest rate-limit wait accepted, in seconds
    seconds_between_requests: float = 0.25  # PyGithub's defaults: clear of secondary limits
    seconds_between_writes: float = 1.0
    bot_login: str | None = None  # the token's login when known (skips the lookup)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.time, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise PostError(f"attempts = {self.attempts!r}: must be at least 1")
        if not (self.max_wait >= 0 and self.backoff >= 0 and self.timeout > 0):
            raise PostError(
                f"max_wait = {self.max_wait!r}, backoff = {self.backoff!r}, timeout = "
                f"{self.timeout!r}: waits must be >= 0 and the timeout > 0"
            )


def check_repo(repo: str) -> str:
    owner, _, name = repo.partition("/")
    if not owner or not name or "/" in name:
        raise PostError(f"repository {repo!r} must be given as owner/name")
    return repo


def _message(exc: GithubException) -> str:
    if exc.message:
        return exc.message
    data = exc.data
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return str(data)[:300]


def _error(action: str, exc: GithubException) -> PostError:
    return PostError(f"GitHub API error while {action}: HTTP {exc.status}: {_message(exc)}")


def _is_rate_limit(exc: GithubException) -> bool:
    if exc.status not in (403, 429):
        return False
    headers = exc.headers or {}
    if "retry-after" in headers or headers.get("x-ratelimit-remaining") == "0":
        return True
    text = _message(exc).lower()
    return "rate limit" in text or text.endswith("please retry your request again later.")


def _transient(exc: BaseException) -> bool:
    """A failure after which the request may or may not have been carried out."""
    if isinstance(exc, GithubException):
        return exc.status >= 500
    return isinstance(exc, OSError)  # requests' ConnectionError and Timeout are OSErrors


class Session:
    """A PyGithub client plus the retry rules above. Use as a context manager."""

    def __init__(self, token: str, options: ClientOptions | None = None) -> None:
        if not token:
            raise PostError("no GitHub token given")
        self.options = options or ClientOptions()
        self.gh = github.Github(
            auth=github.Auth.Token(token),
            base_url=self.options.api_url,
            timeout=max(1, round(self.options.timeout)),
            retry=None,
            seconds_between_requests=self.options.seconds_between_requests,
            seconds_between_writes=self.options.seconds_between_writes,
        )
        self._login: str | None = self.options.bot_login
        self.waited: list[float] = []  # every rate-limit wait taken, for the caller's log

    def __enter__(self) -> Session:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.gh.close()

    def repo(self, repo: str) -> Repository:
        name = check_repo(repo)
        return self.call(f"reading {name}", lambda: self.gh.get_repo(name))

    # -- the retry rules -------------------------------------------------------------------

    def _rate_limit_wait(self, exc: GithubException) -> float:
        headers = exc.headers or {}
        after = headers.get("retry-after", "")
        if after.strip().isdigit():
            return float(after)
        reset = headers.get("x-ratelimit-reset", "")
        if headers.get("x-ratelimit-remaining") == "0" and reset.strip().isdigit():
            return max(0.0, float(reset) - self.options.clock()) + 1.0
        return SECONDARY_WAIT

    def _wait_for_rate_limit(self, action: str, exc: GithubException) -> None:
        wait = self._rate_limit_wait(exc)
        if wait > self.options.max_wait:
            until = dt.datetime.fromtimestamp(self.options.clock() + wait, dt.UTC)
            raise PostError(
                f"GitHub rate limit while {action}: HTTP {exc.status}: {_message(exc)}; "
                f"GitHub asks to wait {wait:.0f} s (until {until:%H:%M:%S} UTC), longer than "
                f"the {self.options.max_wait:.0f} s this command waits"
            ) from exc
        self.waited.append(wait)
        self.options.sleep(wait)

    def call(self, action: str, fn: Callable[[], T], *, repeatable: bool = True) -> T:
        """``fn()`` under the rules above; ``repeatable=False`` for a POST (no blind retry)."""
        attempt = waits = 0
        while True:
            attempt += 1
            try:
                return fn()
            except GithubException as exc:
                if _is_rate_limit(exc):
                    # a limited request was not carried out: waiting and repeating is safe
                    waits += 1
                    if waits > self.options.attempts:
                        raise _error(
                            f"{action} (still rate-limited after {waits - 1} waits)", exc
                        ) from exc
                    self._wait_for_rate_limit(action, exc)
                    attempt -= 1
                    continue
                if not (repeatable and _transient(exc)) or attempt >= self.options.attempts:
                    raise _error(action, exc) from exc
            except OSError as exc:
                if not repeatable or attempt >= self.options.attempts:
                    raise PostError(
                        f"cannot reach {self.options.api_url} while {action}: {exc}"
                    ) from exc
            self.options.sleep(self.options.backoff * 2 ** (attempt - 1))

    def create_once(
        self, action: str, create: Callable[[], T], find: Callable[[], T | None]
    ) -> tuple[T, bool]:
        """POST through ``create`` at most until one lands; never two.

        After a 5xx or a lost connection the POST may have been carried out, so ``find``
        (a read) runs first and what it finds is adopted. Returns ``(object, adopted)``.
        """
        attempt = 0
        while True:
            attempt += 1
            try:
                return self.call(action, create, repeatable=False), False
            except PostError as exc:
                cause = exc.__cause__
                if cause is None or not _transient(cause):
                    raise
                landed = self.call(f"checking whether {action} landed", find)
                if landed is not None:
                    return landed, True
                if attempt >= self.options.attempts:
                    raise
            self.options.sleep(self.options.backoff * 2 ** (attempt - 1))

    # -- who the token is ------------------------------------------------------------------

    def login(self) -> str:
        """The login this token creates comments as (``name[bot]`` for an app's token)."""
        if self._login is None:
            self._login = self._lookup_login()
        return self._login

    def _lookup_login(self) -> str:
        try:
            return str(self.call("reading the token's user", lambda: self.gh.get_user().login))
        except PostError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, GithubException) and cause.status in (401, 403)):
                raise
            user_error = str(exc)
        try:
            _, data = self.call(
                "reading the token's GraphQL viewer",
                lambda: self.gh.requester.graphql_query(
                    "query { viewer { login __typename } }", {}
                ),
            )
            viewer = data["data"]["viewer"]
            login, kind = viewer["login"], viewer.get("__typename")
        except (PostError, KeyError, TypeError) as exc:
            raise PostError(
                f"cannot tell which account this token writes as ({user_error}; GraphQL viewer: "
                f"{exc}); give it explicitly (--bot-login; for GITHUB_TOKEN: github-actions[bot])"
            ) from exc
        if not isinstance(login, str) or not login:
            raise PostError(f"GraphQL viewer returned no login: {data!r:.200}")
        # GraphQL names an app's bot without the "[bot]" that REST shows on its comments
        if kind == "Bot" and not login.endswith(BOT_SUFFIX):
            login += BOT_SUFFIX
        return login

    def owns(self, user: Any) -> bool:
        """Whether a comment's ``user`` is this token's account (a ``[bot]`` login only
        matches a Bot account, never a person who took the same name)."""
        login = getattr(user, "login", None)
        if not isinstance(login, str):
            return False
        mine = self.login().lower()
        if login.lower() != mine:
            return False
        return not mine.endswith(BOT_SUFFIX) or getattr(user, "type", None) == "Bot"
