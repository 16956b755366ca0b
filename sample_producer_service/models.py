"""The event envelope every site sends (the consumer reads the same model)."""

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field


class Message(BaseModel):
    """One event of one customer; ``sequence`` counts up per customer, so the central
    consumer can spot gaps and duplicates."""

    customer_id: str = Field(min_length=1, max_length=64)
    sequence: int = Field(ge=0)
    payload: dict[str, Any] | str = Field(default_factory=dict)
    timestamp: datetime = Field(default_factory=lambda: datetime.now(UTC))
