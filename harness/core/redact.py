"""One redaction rule for every URL trainguard prints: a ledger, an MLflow store or a Ray address may carry a secret
in its user info (``user:secret@host``) or in its query (``?password=…``, which libpq and many drivers accept), and
whatever trainguard prints ends up in CI logs and published pages. :func:`redact_url` hides both; :func:`redact_text`
applies it to every URL inside a free text (a driver's error message, an exception that quotes its input).

What it cannot see: a secret that is not in URL form (a bare token passed as a path, a password in a file the URL
names). Those never reach trainguard's messages in the first place: it prints locations, not file contents.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

HIDDEN = "***"

#: Query parameters whose value is a secret (compared case-insensitively, ``-`` and ``_`` alike).
SECRET_PARAMETERS = frozenset({"password", "passwd", "pass", "pwd", "secret", "token", "access_token", "auth",
                               "api_key", "apikey", "key", "sslpassword", "sslkey", "client_secret", "credentials",
                               "sig", "signature", "x_amz_signature", "x_amz_credential", "x_amz_security_token"})

# scheme://rest-up-to-whitespace-or-a-quote (a URL inside a sentence, a repr, a JSON string)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")
# key=value pairs of a libpq connection string (password=secret host=...), quoted or not
_KEYWORD_SECRET = re.compile(r"\b(password|passwd|sslpassword)\s*=\s*('[^']*'|\"[^\"]*\"|\S+)", re.IGNORECASE)


def _is_secret(name: str) -> bool:
    return name.strip().lower().replace("-", "_") in SECRET_PARAMETERS


def redact_url(url: str) -> str:
    """``url`` with the password of its user info and the values of its secret query parameters replaced by
    ``***``; a text that is not a URL comes back with only libpq-style ``password=…`` pairs hidden."""
    text = str(url)
    if "://" not in text:
        return _KEYWORD_SECRET.sub(lambda m: f"{m.group(1)}={HIDDEN}", text)
    try:
        parts = urlsplit(text)
    except ValueError:  # not parseable (an unbalanced IPv6 bracket): hide everything after the scheme
        return text.split("://", 1)[0] + "://" + HIDDEN
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{HIDDEN}@{host}" if ":" in userinfo else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = "&".join(f"{quote(k, safe='')}={HIDDEN if _is_secret(k) else quote(v, safe='/:,')}" for k, v in pairs)
    fragment = HIDDEN if parts.fragment and "=" in parts.fragment else parts.fragment
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return text  # nothing secret: as given (urlunsplit would turn sqlite:///path into sqlite:/path)
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def redact_text(text: str) -> str:
    """Every URL inside ``text`` redacted (:func:`redact_url`), and libpq-style ``password=…`` pairs."""
    text = _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), str(text))
    return _KEYWORD_SECRET.sub(lambda m: f"{m.group(1)}={HIDDEN}", text)
