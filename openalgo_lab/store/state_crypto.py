"""Secrets at rest: the install pepper, broker-token encryption, and API-key hashing.

The split follows OpenAlgo (reference §4): a *pepper* lives outside the database (a 0600
file in the data directory, or `OPENALGO_LAB_PEPPER`), a per-install *salt* lives inside it,
and the Fernet key is derived from both. A stolen database alone therefore reveals neither
broker tokens nor a way to test API-key guesses; a stolen data directory without the
database reveals nothing either when the database is PostgreSQL.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import os
import secrets
import stat
from pathlib import Path

import bcrypt
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from openalgo_lab.domain.errors import OpenAlgoError

log = logging.getLogger(__name__)

PEPPER_ENV = "OPENALGO_LAB_PEPPER"
PEPPER_FILE = "pepper.secret"
MIN_PEPPER_LENGTH = 32
# OpenAlgo's figure; derivation runs once per process start, so the cost is paid once.
KDF_ITERATIONS = 100_000
API_KEY_ID_LENGTH = 12
BCRYPT_ROUNDS = 12


class SecretError(OpenAlgoError):
    """A stored secret cannot be read back: the pepper or salt is not the one it was made with."""

    http_status = 500


def load_or_create_pepper(data_dir: Path) -> bytes:
    """The install pepper: `OPENALGO_LAB_PEPPER` if set, else the data directory's secret file.

    The file is created on first run with a random value and mode 0600. It is published with
    a hard link from a complete temporary file, so two processes starting together agree on
    one pepper and neither can read a half-written one. The value is never logged.
    """
    from_env = os.environ.get(PEPPER_ENV)
    if from_env is not None:
        return _checked_pepper(from_env.strip(), f"${PEPPER_ENV}")
    path = Path(data_dir) / PEPPER_FILE
    if not path.exists():
        _publish_new_pepper(path)
    _tighten_permissions(path)
    return _checked_pepper(path.read_text(encoding="ascii").strip(), str(path))


def _publish_new_pepper(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (secrets.token_hex(32) + "\n").encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(tmp, path)  # atomic create-if-absent: the first process wins
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    log.info("created a new install pepper in %s", path)


def _tighten_permissions(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); setting it to 0600", path, mode)
        path.chmod(0o600)


def _checked_pepper(text: str, origin: str) -> bytes:
    if len(text) < MIN_PEPPER_LENGTH:
        raise SecretError(
            f"the pepper from {origin} is shorter than {MIN_PEPPER_LENGTH} characters; "
            "use a long random value such as `python -c 'import secrets; "
            "print(secrets.token_hex(32))'`"
        )
    return text.encode("utf-8")


def new_salt() -> str:
    return secrets.token_hex(16)


class SecretBox:
    """Symmetric encryption for secrets stored in the database (broker tokens, app secrets).

    Fernet gives authenticated encryption, so a wrong pepper or salt is detected and reported
    rather than returning garbage that a broker would then reject with a confusing error.
    """

    def __init__(self, pepper: bytes, salt: bytes | str) -> None:
        salt_bytes = salt.encode("utf-8") if isinstance(salt, str) else salt
        kdf = PBKDF2HMAC(
            algorithm=hashes.SHA256(), length=32, salt=salt_bytes, iterations=KDF_ITERATIONS
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(kdf.derive(pepper)))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise SecretError(
                "cannot decrypt a stored secret: the install pepper "
                f"(${PEPPER_ENV} or {PEPPER_FILE} in the data directory) or the database's "
                "install salt differs from the one it was encrypted with; restore them, "
                "or log in to the broker again to store a fresh token"
            ) from None

    def encrypt_optional(self, plaintext: str | None) -> str | None:
        return None if plaintext is None else self.encrypt(plaintext)

    def decrypt_optional(self, ciphertext: str | None) -> str | None:
        return None if ciphertext is None else self.decrypt(ciphertext)


def new_api_key() -> tuple[str, str]:
    """A fresh OpenAlgo-shaped key (64 hex characters) and its public id (its prefix)."""
    key = secrets.token_hex(32)
    return key, api_key_id(key)


def api_key_id(key: str) -> str:
    return key[:API_KEY_ID_LENGTH]


def hash_api_key(key: str, pepper: bytes, *, rounds: int = BCRYPT_ROUNDS) -> str:
    """bcrypt over HMAC-SHA256(pepper, key).

    bcrypt reads at most 72 bytes and a 64-character key plus a 64-character pepper is
    longer, so the pepper is mixed in by HMAC first; the hash still cannot be attacked
    without the pepper, and every byte of both counts.
    """
    return bcrypt.hashpw(_prehash(key, pepper), bcrypt.gensalt(rounds)).decode("ascii")


def verify_api_key(key: str, key_hash: str, pepper: bytes) -> bool:
    with contextlib.suppress(ValueError):
        return bcrypt.checkpw(_prehash(key, pepper), key_hash.encode("ascii"))
    return False


def _prehash(key: str, pepper: bytes) -> bytes:
    digest = hmac.new(pepper, key.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest)
