"""Memory lifecycle: decay, TTL, feedback, deduplication, consolidation, compression, AutoPilot.

``Lifecycle`` (``core.py``) assembles the parts; ``decay.decayed_importance`` is what recall
ranking calls. See each module's docstring for its contract.
"""
