"""Search: the parameter table, write-time index extraction, parsing, compiling, executing."""

from .criteria import compile_criteria, parse_query
from .index import index_resource

__all__ = ["compile_criteria", "index_resource", "parse_query"]
