"""ritz standard library: .dsl modules importable as ``import std.NAME``."""
