"""The event envelope every site sends (the consumer reads the same model)."""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

MAX_SEQUENCE = 2**63 - 1
"""The largest sequence number: the central consumer stores it as a 64-bit integer."""


class Message(BaseModel):
    """One event of one customer; ``sequence`` counts up per customer, so the central
    consumer can spot gaps and duplicates."""

    customer_id: str = Field(min_length=1, max_length=64)
    sequence: int = Field(ge=0, le=MAX_SEQUENCE)
    payload: dict[str, Any] | str = Field(default_factory=dict)
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
    """When the site accepted it; one without a time zone is taken as UTC."""

    @field_validator("customer_id")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError(
                "must not contain the NUL character (\\u0000): the central consumer's "
                "database cannot store it; remove it"
            )
        return value

    @field_validator("timestamp")
    @classmethod
    def _utc_unless_told(cls, value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
