"""Transcribe (WAV) and index (PNG) jobs: an attachment in, a memory of the agent out.

Everything that can be refused is refused in the request, before the 202: the lane or the
endpoint not configured (501 naming the variable), an invisible namespace or agent, a missing
attachment, a file that is not WAV / PNG by its bytes (400), bad memory fields. The job then
reads the attachment, calls the endpoint and stores one memory through the memory engine (with
``attachment_ref`` and ``_dakera_attachment`` provenance); its id is fixed up front and returned
in the 202, so a client can find the memory after a restart lost the job.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dakera_server.engine.access import Caller, agent_namespace
from dakera_server.engine.attachments.models import Attachment
from dakera_server.engine.attachments.service import AttachmentStore
from dakera_server.engine.attachments.sniff import detect
from dakera_server.engine.media.client import MediaClient
from dakera_server.engine.memory.engine import MemoryEngine
from dakera_server.engine.memory.writes import NewMemory, new_memory_id, validate_new
from dakera_server.engine.rules import check_agent_id
from dakera_server.engine.tasks.runner import Task, TaskRunner
from dakera_server.errors import (
    FeatureDisabled,
    InvalidInput,
    JobNotFound,
    NamespaceAccessDenied,
    UnprocessableContent,
)

__all__ = ["ATTACHMENT_META_KEY", "Lane", "MediaEngine"]

ATTACHMENT_META_KEY = "_dakera_attachment"


@dataclass(frozen=True)
class Lane:
    """One kind of media job: its route word, accepted bytes, endpoint and model."""

    name: str  # "transcribe" | "index"
    job_type: str
    media: str  # what detect() must find in the bytes
    media_label: str
    client: MediaClient | None
    model: str
    setting: str  # the variable that turns it on


class MediaEngine:
    """The transcribe and index lanes."""

    def __init__(
        self,
        attachments: AttachmentStore,
        memories: MemoryEngine,
        tasks: TaskRunner,
        *,
        transcription: Lane,
        vision: Lane,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.attachments = attachments
        self.memories = memories
        self.tasks = tasks
        self.lanes = {transcription.name: transcription, vision.name: vision}
        self.clock = clock

    def lane(self, name: str) -> Lane:
        """A lane by its route word, refusing (501) when its endpoint is not configured."""
        lane = self.lanes[name]
        self.attachments.require_enabled()
        if lane.client is None:
            raise FeatureDisabled(
                f"{'transcription' if name == 'transcribe' else 'image indexing'} needs an "
                f"OpenAI-compatible endpoint: set {lane.setting}",
                details=f"set {lane.setting} to enable it",
            )
        return lane

    def submit(
        self, caller: Caller, name: str, namespace: str, ref: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        """Check a job and queue it; the 202 answer of dakera-api.md §5.1."""
        lane = self.lane(name)
        attachment = self.attachments.get(caller, namespace, ref)
        fields = {k: body.get(k) for k in MEMORY_FIELDS}
        agent_id = check_agent_id(body.get("agent_id"))
        if not caller.can_see_agent(agent_id):
            raise NamespaceAccessDenied(f"this key may not write agent '{agent_id}'")
        memory_id = body.get("id") or new_memory_id()
        content = body.get("content")
        if content is not None and (not isinstance(content, str) or not content.strip()):
            raise InvalidInput("'content' must be a non-empty string")
        validate_new(  # the memory engine's own checks, before the job exists
            NewMemory(agent_id=agent_id, content="-", id=memory_id, **fields),
            int(self.clock()),
            max_content_bytes=self.memories.max_content_bytes,
            default_ttl=lambda _a, _t: None,
        )
        head = next(iter(self.attachments.stream(attachment)), b"")
        if detect(head) != lane.media:
            raise InvalidInput(
                f"{lane.name} takes {lane.media_label} attachments; this one is "
                f"{attachment.content_type} ({detect(head)} by its bytes)"
            )
        metadata = {
            "namespace": namespace,
            "attachment_ref": ref,
            "agent_id": agent_id,
            "memory_id": memory_id,
            "model": lane.model,
        }

        language = body.get("lang") if isinstance(body.get("lang"), str) else None

        def work(task: Task) -> None:
            self._run(
                caller, lane, attachment, (agent_id, memory_id, language), content, fields, task
            )

        task = self.tasks.submit(lane.job_type, metadata, work)
        return {
            "job_id": task.id,
            "attachment_ref": ref,
            "agent_id": agent_id,
            "memory_id": memory_id,
            "model": lane.model,
            "status_url": f"/v1/namespaces/{namespace}/attachments/{ref}/{lane.name}/{task.id}",
        }

    def _run(
        self,
        caller: Caller,
        lane: Lane,
        attachment: Attachment,
        target: tuple[str, str, str | None],
        content: str | None,
        fields: dict[str, Any],
        task: Task,
    ) -> None:
        assert lane.client is not None
        agent_id, memory_id, language = target
        data = self.attachments.read_all(attachment, self.attachments.max_bytes)
        task.report(1, 3, f"calling the {lane.name} endpoint")
        if lane.name == "transcribe":
            text = lane.client.transcribe(data, model=lane.model, language=language)
            if not text:
                raise UnprocessableContent("the transcription endpoint found no speech")
            memory_text = text
        else:
            text = lane.client.caption(data, model=lane.model)
            memory_text = "\n\n".join(t for t in (content, text) if t) or (
                f"[image {attachment.ref}]"
            )
        task.report(2, 3, "storing the memory")
        provenance = {
            "namespace": attachment.namespace,
            "attachment_ref": attachment.ref,
            "content_type": attachment.content_type,
            "model": lane.model,
            "lane": lane.name,
        }
        self.memories.store(
            caller,
            [
                NewMemory(
                    agent_id=agent_id,
                    content=memory_text,
                    id=memory_id,
                    attachment_ref=attachment.ref,
                    reserved_metadata={ATTACHMENT_META_KEY: provenance},
                    **fields,
                )
            ],
        )
        task.result["memory_id"] = memory_id

    def job(self, caller: Caller, name: str, namespace: str, ref: str, job_id: str) -> Task:
        """A job of this lane on this attachment, visible to keys that may read the namespace."""
        lane = self.lanes[name]
        self.attachments.require_enabled()
        task = self.tasks.get(job_id, lane.job_type)
        if (
            task.metadata.get("namespace") != namespace
            or task.metadata.get("attachment_ref") != ref
        ):
            raise JobNotFound(f"job '{job_id}' not found", resource="job")
        if not caller.can_see(namespace) or not caller.can_see(agent_namespace(
            task.metadata.get("agent_id", ""))):  # fmt: skip
            raise JobNotFound(f"job '{job_id}' not found", resource="job")
        return task


MEMORY_FIELDS = (
    "memory_type",
    "session_id",
    "importance",
    "tags",
    "metadata",
    "ttl_seconds",
    "expires_at",
)
