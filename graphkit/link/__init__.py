"""MIMIC-IV dictionary entities -> UMLS concepts (docs/interfaces.md §4).

from graphkit.link import link_mimic, read_links, map_items
result = link_mimic(open_release(dir), open_source(mimic))   # LinkResult(items, links, dropped)
links = read_links(workspace.graph / "build" / "kg")          # what `ehr-r1 graph build` wrote
map_items(sample["context_items"], links)                     # key, cui, method, score
"""

from graphkit.link.items import KIND_GROUPS, collect_items, key_expr
from graphkit.link.linker import METHODS, LinkOptions, LinkResult, Vocabulary, link_items
from graphkit.link.mimic import link_mimic
from graphkit.link.table import map_items, read_items, read_links, write_links

__all__ = [
    "KIND_GROUPS",
    "METHODS",
    "LinkOptions",
    "LinkResult",
    "Vocabulary",
    "collect_items",
    "key_expr",
    "link_items",
    "link_mimic",
    "map_items",
    "read_items",
    "read_links",
    "write_links",
]
