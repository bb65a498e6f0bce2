"""Extraction: candidate memories out of captured interactions.

``rules`` (the default, deterministic and offline) and ``llm`` (any OpenAI-compatible chat
endpoint) implement ``base.Extractor``; ``runner.run`` drives either past a watermark.
"""

from memwarden.core.extraction.base import Candidate, ExtractionFailure, Extractor
from memwarden.core.extraction.runner import ExtractReport, make_extractor, run

__all__ = ["Candidate", "ExtractReport", "ExtractionFailure", "Extractor", "make_extractor", "run"]
