"""What the services agree on about errors."""

# Trailer carrying an error's stable, machine-readable reason (e.g.
# `unknown_collection`, `behind`): sent by the indexer to the gateway, by the
# gateway to its callers, and read by Envoy to build REST error bodies.
REASON_KEY = "facesearch-error"
