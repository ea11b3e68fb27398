"""The curation ledger of edge corrections and its replay."""
