"""The station: the process that owns a line's tools, runs its lots and talks to the MES."""
