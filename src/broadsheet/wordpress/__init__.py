"""WordPress migration: the WXR reader, importer, exporter and old-URL redirects."""
