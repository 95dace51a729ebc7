"""Tickets: the closed loop of work orders (in progress: the working calendar comes first)."""
