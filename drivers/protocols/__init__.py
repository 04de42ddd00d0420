"""The wire protocols as definitions both sides share: the Modbus register map and the SCPI
grammar fabline tools publish, the GEM vocabulary derived from a tool interface, the SECS-II
codec and the HSMS session. Drivers and transports speak them; simulators implement them;
none of this is driver logic (no retry, no policy)."""
