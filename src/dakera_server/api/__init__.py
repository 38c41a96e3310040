"""HTTP routers: each parses a request, makes one engine call and shapes the answer."""
