"""The HTTP face of HQ: thin routes over hq.store and hq.enrollment."""
