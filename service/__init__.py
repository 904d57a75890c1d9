"""The search service: one package per concern (see service.http.app for the entry point)."""
