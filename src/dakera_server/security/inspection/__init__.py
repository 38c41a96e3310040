"""What the input-validation layer looks for in a request: the seven injection detectors for
free text (``detectors``), the allow-lists of structured fields (``fields``), system-path and
internal-host probes in labels (``probes``) and the SSRF rules for URLs and hosts (``ssrf``)."""
