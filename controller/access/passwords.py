"""Password hashes (argon2id through pwdlib): what is stored, never the password."""

from __future__ import annotations

from functools import cache

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from drivers.errors import ParameterError

MIN_LENGTH = 8
MAX_LENGTH = 1024  # argon2 takes any length; a megabyte "password" is an attack, not a user


@cache
def _hasher() -> PasswordHash:
    return PasswordHash((Argon2Hasher(),))


def check_password(password: str) -> None:
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        raise ParameterError(f"a password has {MIN_LENGTH} to {MAX_LENGTH} characters")


def hash_password(password: str) -> str:
    check_password(password)
    return _hasher().hash(password)


def verify_password(password: str, stored: str) -> bool:
    if len(password) > MAX_LENGTH:
        return False
    return _hasher().verify(password, stored)


# a hash to verify against when the user does not exist, so a wrong name costs as long as a
# wrong password (no user enumeration by timing)
@cache
def dummy_hash() -> str:
    return _hasher().hash("not-a-real-password")
