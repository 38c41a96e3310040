"""Operations routes: analytics and KPIs, ops (stats, metrics, diagnostics, compaction,
shutdown), quotas, slow queries, runtime configuration, index/cache/cluster administration,
and the metering layer that counts every request (``metering.py``)."""
