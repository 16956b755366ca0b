"""Models the JSON type-header tests map tokens to (importable by path, like a service's)."""

import dataclasses

from pydantic import BaseModel


class Order(BaseModel):
    id: int
    amount: float = 0.0


class Refund(BaseModel):
    id: int
    reason: str = ""


class Shipment(BaseModel):
    id: int


class PriorityOrder(Order):
    priority: int = 1


@dataclasses.dataclass
class OrderKey:
    region: str
    id: int
