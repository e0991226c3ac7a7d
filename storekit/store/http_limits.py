"""The HTTP client's defaults, apart from the client: the transport reads them on every opening of
an `http(s)://` cache, and the client (`http_client`, over urllib3) is only imported for a request
the event loop's fast path (`http_async`) hands back, so most substitutions never load urllib3."""

from __future__ import annotations

#: HTTP statuses that mean "no such file" (Nix treats 403 like 404: S3 answers 403 for missing keys).
MISSING = (403, 404, 410)
#: The longest wait for a connection to open.
CONNECT_TIMEOUT_S = 10.0
#: The longest wait for the next bytes of an answer (Nix's `stalled-download-timeout` is 300 s).
READ_TIMEOUT_S = 60.0
#: Connections kept to one cache, and so requests in flight at once (Nix's `http-connections`).
CONNECTIONS = 25
