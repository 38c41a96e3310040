"""Routers of files: attachments (upload, list, download, delete), document import and its
jobs, transcription and image-index jobs, and multi-representation records, with their wire
models (dakera-api.md §5.1)."""
