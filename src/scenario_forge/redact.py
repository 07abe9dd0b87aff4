"""Secrets never reach a stored or printed text.

:func:`redact` replaces, in any text a server or library hands us:

- the value of every API key this process read (:func:`register_secret`; the OpenAI-compatible
  backend registers the key it reads from ``--api-key-env``),
- ``Bearer <token>`` and the value of an ``Authorization`` header or field,
- tokens shaped like Hugging Face (``hf_...``) and OpenAI-style (``sk-...``) keys,
- the password of credentials written into a URL (``https://user:PASSWORD@host``),

with ``[redacted]``. It runs where backend error text is recorded (``Generation.error``,
``Reject.detail`` and ``Reject.raw`` validate through it) and in the CLI's one-line error printer, so
a server that echoes the request's headers in an error body cannot put the key into rejects, shard
files, reports, manifests or the console.

>>> redact('HTTP 400: {"authorization": "Bearer sk-test-abcdef123456"}')
'HTTP 400: {"authorization": "[redacted]"}'
>>> redact("Authorization: Bearer abc.def.ghi")
'Authorization: [redacted]'
>>> redact("the bearer of bad news; authorization: denied")
'the bearer of bad news; authorization: denied'
>>> redact("token hf_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789 and sk-proj-ABCdef_123-xyz789 here")
'token [redacted] and [redacted] here'
>>> register_secret("my-very-secret-key-42")
>>> redact("echo: my-very-secret-key-42!")
'echo: [redacted]!'
>>> redact("a plain error, hf_ and sk- alone are fine")
'a plain error, hf_ and sk- alone are fine'
>>> redact("cannot connect to https://bob:hunter2pass@10.0.0.1/v1")
'cannot connect to https://bob:[redacted]@10.0.0.1/v1'
>>> register_secret("abc/def+ghi=jk")   # echoed JSON- or URL-escaped by a server
>>> redact(r'{"key": "abc\\/def+ghi=jk"} and abc%2Fdef%2Bghi%3Djk')
'{"key": "[redacted]"} and [redacted]'
"""

from __future__ import annotations

import json
import re
from urllib.parse import quote

MASK = "[redacted]"

#: Values shorter than this are not registered: masking "x" or "EMPTY" everywhere would mangle text.
MIN_SECRET_LEN = 8

_secrets: set[str] = set()

#: Credentials are long; prose ("the bearer of bad news", "authorization: denied") is left alone.
_TOKEN = r"[A-Za-z0-9._~+/=-]{8,}"
_PATTERNS = [
    # "Authorization": "Bearer abc...", authorization=abc..., Authorization: Basic abc...
    re.compile(r"""(?i)(authorization["']?\s*[:=]\s*["']?)(?:(?:bearer|basic|token)\s+)?""" + _TOKEN),
    re.compile(r"(?i)\bbearer\s+" + _TOKEN),
    re.compile(r"\bhf_[A-Za-z0-9]{8,}"),
    re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"),
]
#: ``scheme://user:password@host``: the password is masked, the rest kept for the error to make sense.
_URL_CREDENTIALS = re.compile(r"(://[^/\s:@]+:)[^@\s/]+(@)")


#: Argument names that hold credentials (``--llm-kwargs``, ``--engine-kwargs``): refused, since the
#: config is written to manifest.json and a published card; the libraries read them from the
#: environment instead (``OPENAI_API_KEY``, ``HF_TOKEN``, ...).
SECRET_NAMES = frozenset({"api_key", "token", "hf_token", "access_token", "secret", "password"})


def is_secret(name: str) -> bool:
    """Whether an argument name holds a credential.

    >>> is_secret("api_key"), is_secret("azure_api_key"), is_secret("tokenizer_id"), is_secret("max_new_tokens")
    (True, True, False, False)
    >>> is_secret("hf_token"), is_secret("HF_TOKEN"), is_secret("revision")
    (True, True, False)
    """
    lowered = name.lower()
    return lowered in SECRET_NAMES or lowered.endswith(("_api_key", "_secret", "_password", "_token"))


def register_secret(value: str | None) -> None:
    """Remember ``value`` (an API key read from the environment) so :func:`redact` masks it."""
    if value and len(value) >= MIN_SECRET_LEN:
        # as written, and as a server may echo it: JSON-escaped ("a\\/b") or percent-encoded
        escaped = json.dumps(value)[1:-1]
        _secrets.update({value, escaped, escaped.replace("/", "\\/"), quote(value, safe="")})


def redact(text: str) -> str:
    """``text`` with registered secrets, bearer tokens, authorization values and key-shaped tokens
    replaced by ``[redacted]``."""
    if not text:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _PATTERNS[0].sub(lambda m: m.group(1) + MASK, text)
    text = _URL_CREDENTIALS.sub(lambda m: m.group(1) + MASK + m.group(2), text)
    for pattern in _PATTERNS[1:]:
        text = pattern.sub(MASK, text)
    return text


def redact_optional(text: str | None) -> str | None:
    """:func:`redact` that passes ``None`` through (for optional record fields)."""
    return None if text is None else redact(text)
