"""Ingest services: validate records one by one, then upsert the good ones set-based in one transaction.

Plain functions usable without HTTP (the REST API, the Segment API and the wizard's CSV import call them):

    result = ingest_contacts(workspace=ws, records=[{"external_id": "u1", "email": "a@example.com"}])
    result.created, result.updated, result.errors, result.contact_ids
"""

from contacts.ingest.common import IngestResult
from contacts.ingest.contacts import ingest_contacts
from contacts.ingest.events import ingest_events
from contacts.ingest.orders import ingest_orders
from contacts.ingest.products import ingest_products
from contacts.ingest.request import parse_bulk_body

__all__ = ["IngestResult", "ingest_contacts", "ingest_events", "ingest_orders", "ingest_products", "parse_bulk_body"]
