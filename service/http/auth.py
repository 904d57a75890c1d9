"""The admin guard, the one place it is written: every admin route calls :func:`require_admin`.

============================  ===================================================
token configured / sent       answer
============================  ===================================================
SEARCH_ADMIN_TOKEN unset      404 (the admin routes do not exist)
no ``Bearer`` token           401 with ``WWW-Authenticate: Bearer``
wrong token                   403
right token                   the route runs
============================  ===================================================
"""

from __future__ import annotations

import hmac

from starlette.requests import Request

from service.errors import Forbidden, NotFound, Unauthorized
from service.http.state import settings_of


def require_admin(request: Request) -> None:
    """Raise unless the request carries ``Authorization: Bearer <SEARCH_ADMIN_TOKEN>``."""
    admin_token = settings_of(request).admin_token
    if not admin_token:
        raise NotFound("not found")
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("admin endpoint: send Authorization: Bearer <SEARCH_ADMIN_TOKEN>")
    if not hmac.compare_digest(token.strip().encode(), admin_token.encode()):
        raise Forbidden("admin endpoint: wrong token")
