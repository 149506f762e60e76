"""The shard pipeline both row sources share.

A stream of rows, each with a stable key and a byte size, is cut into row groups and shards by
boundaries.py (one rule) and written by parquet.py (`ShardWriter`, the only user of pyarrow's
parquet writer). What differs per source plugs in: publish-dataset's samples become tables in
editing.py and shard plans in shards.py (built in parallel, named by plan); a refresh streams its
rows through `parquet.write_shards` (hubpress.refresh.publish). staging.py stages and seals the
result for both; fingerprint.py names a publish-dataset stage; card.py and cards.py (and the
refresh's card module) write the card and manifest; pipeline.py holds publish-dataset's steps;
verify.py checks a committed revision for both; sizes.py reads sizes and holds the default bounds.
"""
