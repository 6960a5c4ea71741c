"""The twin server's HTTP and WebSocket API (FastAPI routers)."""
