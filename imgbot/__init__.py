"""imgbot: a DingTalk image bot backed by S3-compatible storage with presigned links."""

__version__ = "0.1.0"
