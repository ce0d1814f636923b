"""Search: write-time index extraction and query compilation (grows with issue 3)."""

from .criteria import compile_criteria, parse_query
from .index import index_resource

__all__ = ["compile_criteria", "index_resource", "parse_query"]
