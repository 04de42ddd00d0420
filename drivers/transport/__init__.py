"""Transports: SCPI over pyvisa and Modbus TCP over pymodbus."""
