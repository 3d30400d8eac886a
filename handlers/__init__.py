"""Handlers, one module per RTK event family: given an event, the meeting state and the ports, decide and act."""
