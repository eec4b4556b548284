"""Feeds for the posts topic: JSONL replay, MVSA-layout directories, a synthetic drifting feed; and the publisher."""
