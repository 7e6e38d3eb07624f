"""Sensors observe and yield plain frozen observations; they never judge and never send."""
