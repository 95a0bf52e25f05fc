"""De-identification: masking, redaction, keyed pseudonyms and format-preserving
tokens, for files, exports and log streams.

>>> from breachwatch.discover.deidentify import Deidentifier, transformer
>>> Deidentifier(transformer("mask")).texts(["연락처 010-1234-5678"])
['연락처 010-****-5678']
"""
from breachwatch.discover.deidentify.apply import Deidentifier, detect_format, run_file
from breachwatch.discover.deidentify.keys import load_key
from breachwatch.discover.deidentify.methods import METHODS, transformer

__all__ = ["Deidentifier", "METHODS", "detect_format", "load_key", "run_file", "transformer"]
