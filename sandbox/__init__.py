"""Fake Wappi + fake Gemini HTTP server for local runs and tests."""
