"""The chat side: inbound payloads, admission, refusals, what the bot says and how replies look."""
