"""Frisag's common code: event schemas, identifiers, stream adapters."""
