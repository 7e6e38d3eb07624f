"""Detection: observations from sensors -> rules -> findings -> respond (spool, alerts)."""
