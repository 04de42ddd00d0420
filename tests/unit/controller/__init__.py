"""The controller's unit layer: one test module per source module (lots/test_lifecycle.py
tests controller/lots/lifecycle.py, ...), run in milliseconds with no network socket, no
subprocess and no sleep; a test that needs a database gets a migrated in-memory SQLite of
its own (conftest.py). Tests that need a simulated line, a broker or PostgreSQL live in
tests/controller and tests/integration."""
