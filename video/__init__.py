"""Video steps (云见面) on aiortc: rooms bound to a case and a state, with the server in the media path.

links (signed join links) · rooms (database side: open/join/leave/close, history) · hub (live
rooms: peer connections, relay, recorders, data channel) · messages (chat and chunked files) ·
recorder (mp4 evidence) · capture (JPEG stills) · frames (private frame copies for viewers) ·
inspection (远程踏勘 checklist → engine.advance) · store/evidence (pages and evidence through
engine.scans) · page + templates/static (the room page) · client/synthetic (a Python
participant and synthetic camera for tests and the benchmark).
"""
