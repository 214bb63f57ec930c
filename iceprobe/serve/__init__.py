"""`iceprobe serve`: a test link a customer opens in their own browser. The page gathers
against the engineer's STUN/TURN servers and uploads an iceprobe event log, which is judged
by the same pipeline as `iceprobe analyze` (recordings -> rules -> render) and stored.

- `links`: HMAC-signed link tokens (verified without the database);
- `store`: the SQLite store of results (WAL, one transaction per upload);
- `judge`: an uploaded recording through the analyze pipeline;
- `app`: the aiohttp application (the page, its config and upload, the admin pages);
- `html`: the admin pages, every string escaped.
"""
