"""Test helpers shipped with the package: a real OpenAI-compatible server on 127.0.0.1 (`local_server`)."""
