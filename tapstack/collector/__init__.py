"""The orders log -> Topic_Purchase: the native stand-in for Fluent Bit's tail input."""
