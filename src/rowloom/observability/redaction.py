"""Secret redaction for log records: a registered secret (an API key) never reaches a log line,
whichever library logs it (the HTTP stack at DEBUG logs response headers, which a hostile or
misconfigured provider may use to echo the key back).

`register_secret` installs, once per process, a log-record factory that wraps the current one and
replaces every registered secret in the formatted message and exception text with
`[REDACTED]`. Records are only created for enabled levels, so the cost is per emitted line.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

__all__ = ["REDACTED", "redact", "register_secret"]

REDACTED = "[REDACTED]"
_MIN_SECRET = 8  # shorter values would redact ordinary words
_secrets: frozenset[str] = frozenset()
_lock = threading.Lock()
_installed = False


def register_secret(value: str | None) -> None:
    """Redact `value` from every later log record of this process."""
    global _secrets
    if not value or len(value) < _MIN_SECRET:
        return
    with _lock:
        _secrets = _secrets | {value}
        _install_locked()


def redact(text: str) -> str:
    """`text` with every registered secret replaced by `REDACTED`."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


def _install_locked() -> None:
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        _scrub(record)
        return record

    logging.setLogRecordFactory(factory)
    _installed = True


def _scrub(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # a malformed record is the logging module's to report
        return
    clean = redact(message)
    if clean != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
