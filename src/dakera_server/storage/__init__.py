"""Durable storage behind one interface; returns only after the commit is durable."""
