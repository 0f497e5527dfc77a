"""The version of calcas, in a module of its own: modules below the package's ``__init__``
(the record set, the extractors) read it from here without importing the calibration,
cascade and cleaning code that ``import calcas`` brings in."""
__version__ = "0.1.0"
