"""edgeship: ship ML models to the AWS edge and roll them out safely."""

__version__ = "0.1.0"
