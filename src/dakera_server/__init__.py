"""dakera-server: a self-hosted memory server for AI agents, wire-compatible with Dakera SDKs."""

from __future__ import annotations

__version__ = "0.1.0"
# The Dakera wire version this server answers as; the SDK's live tests gate on it (§14.8).
API_VERSION = "0.12.3"
