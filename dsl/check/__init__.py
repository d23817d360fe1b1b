"""Block checkers: one module per block kind, each reporting to a DiagnosticSink."""
