"""The service described as an AsyncAPI 3.0 document: built from its listeners, ``@send_to``
replies, ``@publishes`` declarations and configuration; served at ``/asyncapi.json`` and as
a page at ``/asyncapi``; written by ``kafkaboot asyncapi``."""

from kafkaboot.asyncapi.declare import Publication, publishes
from kafkaboot.asyncapi.document import asyncapi_document

__all__ = ["Publication", "asyncapi_document", "publishes"]
