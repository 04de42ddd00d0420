"""Simulated tools on real sockets: process physics, wear and faults."""
