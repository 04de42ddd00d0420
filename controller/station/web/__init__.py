"""The station's web front door: the HTTP API (api.py), the operator pages (pages.py) with
their live stream (feed.py), sessions and scopes (auth.py), served by uvicorn in the
station's own event loop (server.py). Routes call the station's services and read models;
they hold no business logic."""
