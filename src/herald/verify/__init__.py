"""One-time codes for the Verify API (docs/verify.md): settings, codes, hashes, texts.

Pure: no I/O, no clock. Codes come from :mod:`secrets`; a code is kept only as
``HMAC-SHA256(code key, salt | code)``. The code key is derived from
``<data-dir>/master.key`` (:func:`code_key`), like the webhook secrets, so

- a copy of the database (a backup, a replica) holds nothing a code can be
  read back from: a 6-digit code has only 10^6 values, so an unkeyed hash
  (even a slow one) is reversed by trying them all, while the keyed hash
  needs the key, which never enters the database;
- every herald process and node of one data directory (and a restart)
  checks the codes of the others;
- a check costs one HMAC (microseconds), where argon2 would cost ~100 ms of a
  core per check, a cost an attacker could make herald pay at will.

The per-verification salt keeps equal codes from having equal hashes.
"""

from herald.verify._codes import (
    CODE_KEY_LABEL,
    SALT_OCTETS,
    code_hash,
    code_key,
    code_matches,
    new_code,
    new_salt,
)
from herald.verify._settings import (
    MAX_CODE_LENGTH,
    MAX_TEMPLATE_LENGTH,
    MIN_CODE_LENGTH,
    TEMPLATES,
    USE_CASES,
    Autofill,
    VerifySettings,
    check_locale,
    check_template,
    control_characters,
    render,
)

__all__ = [
    "CODE_KEY_LABEL",
    "MAX_CODE_LENGTH",
    "MAX_TEMPLATE_LENGTH",
    "MIN_CODE_LENGTH",
    "SALT_OCTETS",
    "TEMPLATES",
    "USE_CASES",
    "Autofill",
    "VerifySettings",
    "check_locale",
    "check_template",
    "code_hash",
    "code_key",
    "code_matches",
    "control_characters",
    "new_code",
    "new_salt",
    "render",
]
