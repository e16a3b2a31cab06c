"""Bearer tokens for `hpo serve`: where they come from and how a request's is checked.

Two kinds: a read-write token may do everything, a read-only token may only
read (list, get, trials, best). They come from a token file (`--token-file`),
else from the environment:

    HPO_TOKEN        a read-write token (also what `hpo.connect` sends by default)
    HPO_READ_TOKEN   a read-only token

A token file holds one token a line, `write TOKEN` or `read TOKEN` (a bare
TOKEN is read-write); blank lines and lines starting with `#` are skipped.
With no token at all the server lets every request in, which `hpo serve`
allows on a loopback address only.

Tokens are compared in constant time (`hmac.compare_digest`, against every
known token, without stopping at the first match) and never printed: this
module's objects show how many tokens they hold, not the tokens.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path

from hpo.errors import HpoError

TOKEN_VARIABLE = "HPO_TOKEN"
READ_TOKEN_VARIABLE = "HPO_READ_TOKEN"
MIN_TOKEN_LENGTH = 16  # a shorter one could be guessed


class Access(IntEnum):
    """What a request may do; each level includes those below it."""

    NONE = 0
    READ = 1
    WRITE = 2


class TokenError(HpoError):
    """A token file that cannot be read, or a token too short to be safe."""


@dataclass(frozen=True)
class Tokens:
    """The tokens a server accepts. Empty: no authentication (loopback only)."""

    write: tuple[str, ...] = field(default=(), repr=False)
    read: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        for token in self.write + self.read:
            if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
                raise TokenError(
                    f"a token must be at least {MIN_TOKEN_LENGTH} characters without spaces "
                    "(make one with: python -c 'import secrets; print(secrets.token_urlsafe())')"
                )

    @property
    def required(self) -> bool:
        return bool(self.write or self.read)

    def access(self, token: str | None) -> Access:
        """What the bearer of `token` may do. Every known token is compared, in
        constant time, whatever matched before, so the timing tells nothing."""
        if not self.required:
            return Access.WRITE
        if token is None:
            return Access.NONE
        given = token.encode()
        writes = [hmac.compare_digest(given, t.encode()) for t in self.write]
        reads = [hmac.compare_digest(given, t.encode()) for t in self.read]
        if any(writes):
            return Access.WRITE
        return Access.READ if any(reads) else Access.NONE

    def __repr__(self) -> str:
        return f"Tokens({len(self.write)} read-write, {len(self.read)} read-only)"


def load_tokens(
    token_file: str | Path | None = None, env: Mapping[str, str] | None = None
) -> Tokens:
    """The tokens from `token_file` if given, else from HPO_TOKEN / HPO_READ_TOKEN."""
    if token_file is not None:
        return _from_file(Path(token_file))
    env = os.environ if env is None else env
    write = env.get(TOKEN_VARIABLE, "").strip()
    read = env.get(READ_TOKEN_VARIABLE, "").strip()
    return Tokens(write=(write,) if write else (), read=(read,) if read else ())


def _from_file(path: Path) -> Tokens:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TokenError(
            f"cannot read the token file {str(path)!r}: {exc.__class__.__name__}"
        ) from None
    write: list[str] = []
    read: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) == 1:
            write.append(words[0])
        elif len(words) == 2 and words[0] in ("read", "write"):
            (write if words[0] == "write" else read).append(words[1])
        else:  # the line is not quoted: it may hold a token
            raise TokenError(
                f"token file {str(path)!r}, line {number}: expected 'write TOKEN', "
                "'read TOKEN' or 'TOKEN'"
            )
    if not write and not read:
        raise TokenError(f"token file {str(path)!r} holds no token")
    return Tokens(write=tuple(write), read=tuple(read))
