"""Recipe controller, genealogy, MES hook, station daemon and the CLI."""
