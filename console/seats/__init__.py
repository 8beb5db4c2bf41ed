"""Seats without shell accounts: `ansim ssh` (asyncssh) and `ansim web` (textual-serve).

A seat serves the console and nothing else; it imports the configuration and the wire,
never the engine, the core, the journal, the gateway or the simulator.
"""
