"""The agent's local channel: an authenticated, line-delimited JSON link to the tray and the CLI.

``server.LocalChannelServer`` runs in the agent; ``client.AgentClient`` (Qt-free) talks to it;
``ops`` is the contract of operation names and shapes; ``transport`` is the OS seam (Unix socket
with SO_PEERCRED, Windows named pipe with client impersonation, in-process fake).
"""
