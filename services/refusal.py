"""Why an action changed nothing: one type for every refusal the services give.

`reason` is a domain's enum (`ReportRefusal`, `DecisionRefusal`, `CaseRefusal`) whose value
names the message in locales (`report.refused.<value>`, `moderation.refused.<value>`,
`case.refused.<value>`); the other fields say what the message needs, never who else acted.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

Reason = TypeVar("Reason", bound=StrEnum)


@dataclass(frozen=True)
class Refused(Generic[Reason]):
    reason: Reason
    state: str | None = None  # where the report or case stood, when that is the reason
    decided_by: int | None = None  # the moderator who decided first (shown to moderators)
    reference: str | None = None  # the rider's earlier report that used the same photo
    limit: int | None = None  # the limit the rider reached
