"""Media: speech-to-text of WAV attachments and indexing of PNG attachments, as memories.

Owns: the client of the operator's OpenAI-compatible endpoints (``POST /v1/audio/
transcriptions``; ``POST /v1/chat/completions`` with an image for a caption), behind the SSRF
guard every outbound call takes, and the transcribe / index jobs that store the result as a
memory of the agent. No model is ever downloaded or run here: without a configured endpoint the
routes answer 501 naming the variable to set.
May import: ``attachments``, ``entities`` (the outbound URL guard), ``memory``, ``tasks``, the
engine's ``access`` and ``rules``, and ``errors``.
"""
