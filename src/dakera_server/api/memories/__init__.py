"""Routers of agent memories: store and recall, sessions, agents, feedback, knowledge graph
and lifecycle (decay, TTL, deduplication, consolidation, AutoPilot), with their wire models."""
