"""Who is calling and what their token reaches: roles scoped to projects."""

from __future__ import annotations

import enum
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import datetime

# "*" in a token's projects reaches every project.
ALL_PROJECTS = "*"
SECRET_BYTES = 32
# The bootstrap token (from the server's environment or a file) is an admin without a row.
BOOTSTRAP_ID = "bootstrap"


class Role(enum.Enum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


@dataclass
class Token:
    """A stored token; the secret itself is never stored, only its hash."""

    id: str
    name: str
    role: Role
    projects: list[str] = field(default_factory=list)
    create_time: datetime | None = None
    revoke_time: datetime | None = None


@dataclass(frozen=True)
class Principal:
    """The caller of one request."""

    id: str
    role: Role
    projects: frozenset[str] = frozenset()

    def reaches(self, project: str) -> bool:
        return self.role is Role.ADMIN or ALL_PROJECTS in self.projects or project in self.projects

    def can_write(self, project: str) -> bool:
        return self.role is not Role.READ and self.reaches(project)

    @property
    def scoped(self) -> bool:
        """True when some projects are out of reach."""
        return self.role is not Role.ADMIN and ALL_PROJECTS not in self.projects

    @classmethod
    def of(cls, token: Token) -> Principal:
        return cls(token.id, token.role, frozenset(token.projects))


# Calls on a server without authentication act as an administrator.
ANONYMOUS = Principal("anonymous", Role.ADMIN)


def new_secret() -> str:
    return "os_" + secrets.token_urlsafe(SECRET_BYTES)


def secret_hash(secret: str) -> str:
    """SHA-256 suffices: secrets are 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(secret.encode()).hexdigest()
